"""
Taking back what a failed forward pass did to a model's running state, at no cost to one that succeeds.
Heads update their metrics while they run, and a loss weighting may accumulate the heads' losses; a mistake
that shows only afterwards (a head's loss that is not a scalar, or not finite) must not leave that batch
counted.
"""

from typing import Any, Dict, Iterable, List, Optional, Tuple, Type

import torch
from allennlp.training.metrics import Metric

# Where a held metric finds the list of held-back updates (an attribute while it is held).
_HELD = "_allennlp_multitask_held_updates"
# Each metric class's holding subclass, made once.
_HOLDING_CLASSES: Dict[type, type] = {}


def find_metrics(module: torch.nn.Module) -> List[Metric]:
    """
    The `Metric` objects that `module` or any of its submodules holds, as an attribute or inside a
    dict, list or tuple attribute; each once, in the order found.
    """
    found: Dict[int, Metric] = {}
    for submodule in module.modules():
        for value in vars(submodule).values():
            if isinstance(value, dict):
                items: Iterable[Any] = value.values()
            else:
                items = value if isinstance(value, (list, tuple)) else (value,)
            for item in items:
                if isinstance(item, Metric):
                    found.setdefault(id(item), item)
    return list(found.values())


def _hold(metric: Metric, *args: Any, **kwargs: Any) -> None:
    vars(metric)[_HELD].append((metric, args, kwargs))


def _holding_class(metric_class: Type[Metric]) -> type:
    """A subclass of `metric_class` whose call, the metric's update, is recorded rather than made."""
    holding = _HOLDING_CLASSES.get(metric_class)
    if holding is None:
        namespace = {"__call__": _hold, "__module__": metric_class.__module__}
        holding = _HOLDING_CLASSES[metric_class] = type(f"Held{metric_class.__name__}", (metric_class,), namespace)
    return holding


class HeldBackUpdates:
    """
    Holds back the updates (calls) that `metrics` get inside a `with` block, to make them, in the order
    they came, on `release()`; `discard()` drops them instead, and puts back `tensors` (updated in place,
    e.g. a loss weighting's running loss sums, which it clones). A failed forward pass then leaves the
    metrics untouched, and a successful one costs a list append per update (and a change of class per
    metric on entering and leaving), not a copy of every metric's state.

    Updates are the metrics' calls (`metric(predictions, gold_labels)`), as heads make them; what the
    calls are given is used at `release()`, so it must not change in place in between. A metric that
    rejects its own update (its call raises, on `release()`) leaves the updates before it made.

    # Parameters

    metrics : `Iterable[Metric]`
        The metrics whose updates to hold back.
    tensors : `Iterable[torch.Tensor]`
        Tensors updated in place whose values `discard()` puts back.
    """

    def __init__(self, metrics: Iterable[Metric], tensors: Iterable[torch.Tensor]) -> None:
        self._metrics = list({id(metric): metric for metric in metrics}.values())
        self._tensor_values = [(tensor, tensor.clone()) for tensor in tensors]
        self._updates: List[Tuple[Metric, Tuple[Any, ...], Dict[str, Any]]] = []
        self._classes: List[type] = []

    def __enter__(self) -> "HeldBackUpdates":
        self._classes = [type(metric) for metric in self._metrics]
        for metric, metric_class in zip(self._metrics, self._classes):
            vars(metric)[_HELD] = self._updates
            metric.__class__ = _holding_class(metric_class)
        return self

    def __exit__(self, *exception: Optional[BaseException]) -> None:
        for metric, metric_class in zip(self._metrics, self._classes):
            metric.__class__ = metric_class
            del vars(metric)[_HELD]

    def release(self) -> None:
        """Makes the held-back updates, in order. Call it once, after the `with` block."""
        for metric, args, kwargs in self._updates:
            metric(*args, **kwargs)
        self._updates.clear()

    def discard(self) -> None:
        """Drops the held-back updates and puts back the tensors' values. Call it once, after the `with` block."""
        self._updates.clear()
        for tensor, value in self._tensor_values:
            tensor.copy_(value)
