"""
What a multitask model needs to train under `torch.distributed` (AllenNLP's `"distributed"` setting) with
DDP's default `find_unused_parameters=False`. Each function is collective: every worker must call it, in
the same order.
"""

from typing import Iterable, List, Sequence

import torch
import torch.distributed as dist
from allennlp.nn import util


def _all_reduce_flags(flags: Sequence[bool], op: "dist.ReduceOp.RedOpType") -> List[int]:
    tensor = torch.tensor(list(flags), dtype=torch.int32, device=util.distributed_device())
    dist.all_reduce(tensor, op=op)
    return tensor.tolist()


def heads_run_by_any_worker(heads: Sequence[str], ran_here: Iterable[str]) -> List[str]:
    """
    The `heads`, in their order, that ran on this worker or on any other. Every worker then asks the same
    heads for their metrics in the same order, so the metrics' own all-reduce calls pair up.
    """
    here = set(ran_here)
    counts = _all_reduce_flags([head in here for head in heads], dist.ReduceOp.MAX)
    return [head for head, count in zip(heads, counts) if count]


def check_same_heads_on_every_worker(heads: Sequence[str], running_here: Iterable[str]) -> None:
    """
    Raises `ValueError` unless every worker runs the same heads on its batch. Heads update their metrics
    while they run, and AllenNLP's metrics (accuracy, F1, averages) sum each update across workers right
    away: workers that ran different heads would add one head's counts to another's, and their metrics,
    early stopping and learning-rate schedules would drift apart.
    """
    here = set(running_here)
    counts = _all_reduce_flags([head in here for head in heads], dist.ReduceOp.SUM)
    workers = dist.get_world_size()
    mixed = {head: count for head, count in zip(heads, counts) if 0 < count < workers}
    if mixed:
        raise ValueError(
            f"Under distributed training every worker must run the same heads on each batch, but on this "
            f"batch head(s) {list(mixed)} ran on only {list(mixed.values())} of {workers} workers: the "
            "workers' batches hold different tasks. Heads' metrics sum their counts across workers at "
            "each update, so every worker needs the same number of batches of each task: e.g. make each "
            "task's instance count a multiple of the number of workers, or give the multitask data "
            "loader 'instances_per_epoch' and a sampler whose proportions do not depend on a worker's "
            "share of the data ('uniform', 'weighted')."
        )


def zero_touching(loss: torch.Tensor, modules: Iterable[torch.nn.Module]) -> torch.Tensor:
    """
    A zero that depends on every trainable parameter of `modules` (the heads without a loss in this
    batch), so that `DistributedDataParallel` sees a (zero) gradient for each and its reducer does not
    wait for them.
    """
    idle = [parameter for module in modules for parameter in module.parameters() if parameter.requires_grad]
    return zero_touching_parameters(loss, idle)


def zero_touching_parameters(like: torch.Tensor, parameters: List[torch.nn.Parameter]) -> torch.Tensor:
    """A scalar zero like `like` (dtype, device) that depends on each of `parameters`."""
    if not parameters:
        return like.new_zeros(())
    return torch.stack([parameter.sum() for parameter in parameters]).sum() * 0.0
