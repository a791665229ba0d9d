"""
Collecting what each distributed worker's metric saw in a batch, so that every worker's metric holds the
totals of all workers. Each function is collective: every worker must call it, in the same order.
"""

from typing import Dict, List, Sequence

import torch
import torch.distributed as dist
from allennlp.nn import util


def stack_from_workers(tensor: torch.Tensor) -> torch.Tensor:
    """
    Every worker's `tensor` (the same shape on all), stacked in rank order: shape (workers, *shape), on
    `tensor`'s device.
    """
    local = tensor.to(util.distributed_device())
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local)
    return torch.stack(parts).to(tensor.device)


def cat_rows_from_workers(tensor: torch.Tensor) -> torch.Tensor:
    """
    Every worker's `tensor` concatenated along its first dimension, in rank order; workers may hold
    different numbers of rows (none, too). Each worker's rows are padded to the longest for the gather.
    """
    counts = stack_from_workers(torch.tensor(tensor.size(0), device=tensor.device)).tolist()
    longest = max(counts)
    if longest == 0:
        return tensor
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.size(0)] = tensor
    parts = stack_from_workers(padded)
    return torch.cat([part[:count] for part, count in zip(parts, counts)])


def sum_counts_of_workers(counts: Sequence[Dict[str, int]]) -> List[Dict[str, int]]:
    """
    `counts` (several tallies by label, e.g. true positives, false positives, false negatives) summed
    label by label over all workers; each worker may hold its own labels.
    """
    gathered: List[Sequence[Dict[str, int]]] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(gathered, [dict(tally) for tally in counts])
    totals: List[Dict[str, int]] = [{} for _ in counts]
    for worker_counts in gathered:
        for total, tally in zip(totals, worker_counts):
            for label, count in tally.items():
                total[label] = total.get(label, 0) + count
    return totals
