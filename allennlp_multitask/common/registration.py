"""
Registering our classes under the names of AllenNLP's that they replace.

AllenNLP's `register(name, exist_ok=True)` logs "multitask has already been registered as
MultiTaskModel, but exist_ok=True, so overwriting with Model": it names the base class (`Model`),
never the class that takes the name. `replace_registration` logs both classes instead.
"""

import logging
from typing import Callable, Optional, Type, TypeVar

from allennlp.common import Registrable

logger = logging.getLogger(__name__)

_Class = TypeVar("_Class", bound=type)


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def replace_registration(
    base: Type[Registrable], name: str, constructor: Optional[str] = None
) -> Callable[[_Class], _Class]:
    """
    A class decorator: registers the class as `base`'s `name` (built by its method `constructor`, as in
    `Registrable.register`), replacing what was registered there.
    """

    def register(cls: _Class) -> _Class:
        replaced = Registrable._registry[base].pop(name, None)
        base.register(name, constructor=constructor)(cls)
        if replaced is not None:
            logger.debug(
                "%s '%s' is %s, replacing %s",
                base.__name__,
                name,
                _qualified_name(cls),
                _qualified_name(replaced[0]),
            )
        return cls

    return register
