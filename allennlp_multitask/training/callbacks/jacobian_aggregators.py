"""
TorchJD's aggregators by the names that a `jacobian_descent` callback's configuration gives them. TorchJD is
an optional dependency (the `jd` extra): nothing here imports it until an aggregator is built.
"""

import importlib
import inspect
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Union

import torch
from allennlp.common.checks import ConfigurationError

from allennlp_multitask.common.extras import install_hint

if TYPE_CHECKING:
    from torchjd.aggregation import Aggregator

# Configuration name -> class in `torchjd.aggregation`.
AGGREGATORS: Dict[str, str] = {
    "upgrad": "UPGrad",
    "aligned_mtl": "AlignedMTL",
    "cagrad": "CAGrad",
    "config": "ConFIG",
    "dualproj": "DualProj",
    "excess_mtl": "ExcessMTL",
    "fairgrad": "FairGrad",
    "graddrop": "GradDrop",
    "gradvac": "GradVac",
    "imtl_g": "IMTLG",
    "mean": "Mean",
    "mgda": "MGDA",
    "nash_mtl": "NashMTL",
    "pcd": "PCD",
    "pcgrad": "PCGrad",
    "random": "Random",
    "sum": "Sum",
}

# TorchJD's aggregators that do not fit the rows of a multitask step, and why.
UNFIT: Dict[str, str] = {
    "constant": "it weighs the rows by their position, but a step's rows are the tasks it saw, which vary from "
    "step to step; weigh the heads with the model's loss_weights instead",
    "krum": "it keeps the rows closest to the others and drops the rest, which for tasks (not workers) means "
    "training some tasks and ignoring others",
    "trimmed_mean": "it drops the extreme values of each coordinate, which for a handful of task rows drops "
    "tasks' gradients rather than outliers",
}

# Constructor arguments that take Python objects, which a configuration cannot give.
_NOT_CONFIGURABLE = {"self", "projector", "f"}

# The aggregators whose solvers (cvxpy, ecos, scipy) only the `jd-full` extra installs.
_NEED_JD_FULL = {"cagrad", "fairgrad", "nash_mtl"}


def build_aggregator(config: Union[str, Mapping[str, Any]]) -> "Aggregator":
    """
    The TorchJD aggregator that `config` names, e.g. `{"type": "cagrad", "c": 0.5}`, or `"upgrad"` for
    `{"type": "upgrad"}`; lists of numbers become tensors (`pref_vector`). Raises `ConfigurationError` for
    an unknown name or option, an option TorchJD refuses, and a missing optional dependency, naming the
    extra that installs it.
    """
    if isinstance(config, str):
        config = {"type": config}
    if not isinstance(config, Mapping):
        raise ConfigurationError(
            f'jacobian_descent: aggregator must be a name or {{"type": name, ...options}}, not {config!r}.'
        )
    options = dict(config)
    name = options.pop("type", None)
    if name in UNFIT:
        raise ConfigurationError(f'jacobian_descent: TorchJD\'s aggregator "{name}" is not offered: {UNFIT[name]}.')
    if name not in AGGREGATORS:
        raise ConfigurationError(
            f"jacobian_descent: aggregator type {name!r} is not one of {sorted(AGGREGATORS)} "
            f'(given as {{"type": name, ...options}}).'
        )
    try:
        aggregation = importlib.import_module("torchjd.aggregation")
    except ImportError as error:
        raise ConfigurationError(
            f"jacobian_descent needs TorchJD, which is not installed ({error}): {install_hint('jd')}"
        ) from error
    aggregator_class = getattr(aggregation, AGGREGATORS[name])
    parameters = inspect.signature(aggregator_class).parameters
    configurable = [option for option in parameters if option not in _NOT_CONFIGURABLE]
    unknown = sorted(set(options) - set(configurable))
    if unknown:
        raise ConfigurationError(
            f'jacobian_descent: aggregator "{name}" has no option(s) {unknown}; its options: {configurable}.'
        )
    try:
        arguments = {
            option: torch.tensor(value, dtype=torch.get_default_dtype()) if isinstance(value, list) else value
            for option, value in options.items()
        }
        return aggregator_class(**arguments)
    except ImportError as error:
        install = install_hint("jd-full" if name in _NEED_JD_FULL else "jd")
        raise ConfigurationError(
            f'jacobian_descent: aggregator "{name}" needs a solver that is not installed ({error}): {install}'
        ) from error
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f'jacobian_descent: aggregator "{name}" with options {options}: {error}') from error


def gramian_weights(aggregator: "Aggregator", gramian: torch.Tensor) -> Optional[torch.Tensor]:
    """
    The weights with which `aggregator` combines the rows whose Gramian is `gramian`, for the aggregators
    whose weights depend on the rows only through their Gramian (UPGrad, MGDA, DualProj, ...) or their
    number (sum, mean, random); `None` for those that need the rows themselves (ConFIG, GradDrop,
    ExcessMTL, Nash-MTL). The rows' aggregation is then `weights @ rows`, as `aggregator(rows)` computes it.
    """
    from torchjd.aggregation import (
        GramianWeightedAggregator,
        MeanWeighting,
        RandomWeighting,
        SumWeighting,
        WeightedAggregator,
    )

    if isinstance(aggregator, GramianWeightedAggregator):
        return aggregator.gramian_weighting(gramian)
    if isinstance(aggregator, WeightedAggregator) and isinstance(
        aggregator.weighting, (MeanWeighting, RandomWeighting, SumWeighting)
    ):
        return aggregator.weighting(gramian)  # They read only its number of rows.
    return None
