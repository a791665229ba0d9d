"""
AllenNLP's optimizers with torch's fast implementations within reach of a config.

AllenNLP 2.10's `"adam"`, `"adamw"`, `"sgd"` and the other wrappers of `torch.optim` pass their own list
of arguments to torch, which predates `foreach` (one multi-tensor kernel per operation for all
parameters) and `fused` (the whole update in one kernel per parameter group). Left unset, torch runs
its single-tensor loop on the CPU: a Python loop of small kernels per parameter. Importing this package
re-registers each of those wrappers under its own name, accepting `"foreach"` and `"fused"` as well, so
existing configs construct exactly the optimizer they did and a config can ask for the fast one:

    "optimizer": {"type": "adam", "lr": 0.001, "fused": true}

The fast implementations compute the same update in a different order of floating-point operations
(measured in the README's Performance section), so runs are reproducible with either setting but not
bit-identical across settings.
"""

import inspect
from typing import Any, Dict, List, Optional, Tuple, Type

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.training.optimizers import Optimizer

from allennlp_multitask.common.registration import replace_registration

FAST_OPTIONS = ("foreach", "fused")


class _PassTorchOptions:
    """
    Placed after an AllenNLP wrapper and before the torch optimizer it wraps in the method resolution
    order: it adds `self._torch_options` to the wrapper's call of the torch constructor, so that torch
    itself checks them (parameter types, devices) as it does for its own callers.
    """

    _torch_options: Dict[str, bool]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs, **self._torch_options)  # type: ignore[call-arg]


def torch_optimizer_of(wrapper: Type[Optimizer]) -> Type[torch.optim.Optimizer]:
    """The `torch.optim` class that an AllenNLP optimizer wrapper inherits from."""
    return next(
        base
        for base in wrapper.__mro__
        if base.__module__.startswith("torch.optim.") and base is not torch.optim.Optimizer
    )


def accepting_fast_options(name: str) -> Type[Optimizer]:
    """
    AllenNLP's optimizer registered as `name`, subclassed to accept `foreach` and `fused` and
    registered again under the same name. Only called for wrappers whose torch optimizer takes `foreach`.
    """
    wrapper = Optimizer.by_name(name)
    torch_optimizer = torch_optimizer_of(wrapper)
    accepted = [option for option in FAST_OPTIONS if option in inspect.signature(torch_optimizer).parameters]
    wrapper_arguments = set(inspect.signature(wrapper).parameters)

    class FastOptionsOptimizer(wrapper, _PassTorchOptions, torch_optimizer):  # type: ignore[misc, valid-type]
        def __init__(
            self,
            model_parameters: List[Tuple[str, torch.nn.Parameter]],
            parameter_groups: Optional[List[Tuple[List[str], Dict[str, Any]]]] = None,
            foreach: Optional[bool] = None,
            fused: Optional[bool] = None,
            **kwargs: Any,
        ) -> None:
            # AllenNLP's `from_params` hands every key it does not know to `**kwargs`.
            unknown = sorted(set(kwargs) - wrapper_arguments)
            if unknown:
                raise ConfigurationError(f"Extra parameters passed to optimizer '{name}': {unknown}.")
            given = {option: value for option, value in zip(FAST_OPTIONS, (foreach, fused)) if value is not None}
            refused = sorted(set(given) - set(accepted))
            if refused:
                raise ConfigurationError(
                    f"Optimizer '{name}' ({torch_optimizer.__module__}.{torch_optimizer.__name__}, "
                    f"torch {torch.__version__}) has no {refused[0]} implementation; it accepts {accepted}."
                )
            self._torch_options = given
            try:
                super().__init__(model_parameters=model_parameters, parameter_groups=parameter_groups, **kwargs)
            except RuntimeError as error:  # Torch's refusals of its options: both at once, unsupported devices.
                if not given:
                    raise
                raise ConfigurationError(f"Optimizer '{name}' refuses {given}: {error}") from error

    FastOptionsOptimizer.__name__ = FastOptionsOptimizer.__qualname__ = wrapper.__name__
    FastOptionsOptimizer.__doc__ = f"""
    AllenNLP's `{wrapper.__name__}` (`torch.optim.{torch_optimizer.__name__}`), also taking torch's
    fast implementations. Registered as an `Optimizer` with name "{name}", replacing AllenNLP's.

    # Parameters

    model_parameters : `List[Tuple[str, torch.nn.Parameter]]`
        Given by the trainer.
    parameter_groups : `List[Tuple[List[str], Dict[str, Any]]]`, optional (default = `None`)
        As for AllenNLP's optimizers.
    foreach : `bool`, optional (default = `None`, torch's choice: the single-tensor loop on the CPU)
        Torch's multi-tensor implementation.
    fused : `bool`, optional (default = `None`, i.e. not fused)
        Torch's fused implementation, where torch has one for this optimizer: {"fused" in accepted}.
    **kwargs
        AllenNLP's arguments for "{name}" (`lr` and the others), with AllenNLP's defaults.
    """
    return replace_registration(Optimizer, name)(FastOptionsOptimizer)


REGISTERED_NAMES = ["adam", "adamw", "adamax", "adagrad", "adadelta", "sgd", "rmsprop", "averaged_sgd"]
FAST_OPTIMIZERS = {name: accepting_fast_options(name) for name in REGISTERED_NAMES}
