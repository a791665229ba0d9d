"""
Checks of a multitask model's configuration: mistakes fail at construction with a `ConfigurationError`
naming the key at fault and what exists.
"""

import difflib
import inspect
from typing import Any, Callable, Dict, Iterable, List, Mapping

from allennlp.common.checks import ConfigurationError


def check_model_keys(model_kwargs: Mapping[str, Any], model_init: Callable, base_init: Callable) -> None:
    """
    Raises for keys of `model_kwargs` that neither `model_init` nor `base_init` (`Model.__init__`, which
    gets them) takes. `from_params` passes keys it does not know on to a constructor with `**kwargs`, so a
    misspelled key (`"loss_weigths"`) would otherwise reach `Model.__init__` as a bare `TypeError`.
    """
    base_keys = set(inspect.signature(base_init).parameters) - {"self", "vocab"}
    unknown = sorted(set(model_kwargs) - base_keys)
    if unknown:
        own_keys = set(inspect.signature(model_init).parameters) - {"self", "vocab", "kwargs"}
        known = sorted(own_keys | base_keys)
        guesses = {key: difflib.get_close_matches(key, known, n=1) for key in unknown}
        hints = "".join(f" Did you mean '{guess[0]}' for '{key}'?" for key, guess in guesses.items() if guess)
        raise ConfigurationError(f"MultiTaskModel has no key(s) {unknown}; its keys: {known}.{hints}")


def check_component_keys(option: str, keys: Iterable[str], components: List[str]) -> None:
    """Raises for keys of a per-component option that name neither the backbone nor a head."""
    unknown = sorted(set(keys) - set(components))
    if unknown:
        raise ConfigurationError(
            f"MultiTaskModel's {option} names {unknown}, which are not components; components: {components}."
        )


def check_head_names(option: str, names: List[str], heads: List[str]) -> None:
    """
    Raises for entries of `names` (from `option`) that are not heads, with a hint for a string given where
    a list belongs (`from_params` splits it into its characters).
    """
    unknown = sorted(set(names) - set(heads))
    if unknown:
        hint = ""
        if len(names) > 1 and all(len(name) == 1 for name in names):
            hint = f' A string where a list belongs? Write ["{"".join(names)}"].'
        raise ConfigurationError(f"{option} names {unknown}, which are not heads; heads: {heads}.{hint}")


def build_task_heads(heads: List[str], task_heads: Dict[str, List[str]]) -> Dict[str, List[str]]:
    """
    The heads serving each task: those `task_heads` lists for its tasks, and for every other task the
    head named like it. Raises for an entry that is not a non-empty list of heads.
    """
    for task, names in task_heads.items():
        if isinstance(names, str) or not names:
            raise ConfigurationError(f"task_heads['{task}'] must be a non-empty list of head names, got {names!r}.")
        check_head_names(f"task_heads['{task}']", list(names), heads)
    return {**{head: [head] for head in heads}, **{task: list(names) for task, names in task_heads.items()}}
