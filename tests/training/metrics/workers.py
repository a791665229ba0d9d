"""Updating a metric on two forked workers (gloo), each with its own batches, against one process on all of them."""

import copy
from typing import Any

from allennlp.training.metrics import Metric

from tests.distributed_workers import WORKERS, on_two_workers

# Per worker, per step: the arguments of one update.
WorkerBatches = list[list[tuple[Any, ...]]]


def _update_and_read(rank: int, metric: Metric, batches: WorkerBatches) -> Any:
    for arguments in batches[rank]:
        metric(*arguments)
    return metric.get_metric(reset=True)


def read_on_two_workers(metric: Metric, batches: WorkerBatches, tmp_path: Any) -> list[Any]:
    """What `metric` gives on each of two workers after worker `rank` updated it with `batches[rank]`, in step."""
    assert len(batches) == WORKERS and len(batches[0]) == len(batches[1])
    return on_two_workers(_update_and_read, metric, batches, out_dir=tmp_path)


def read_in_one_process(metric: Metric, batches: WorkerBatches) -> Any:
    """What a copy of `metric` gives in this process after every worker's updates, step by step, in rank order."""
    metric = copy.deepcopy(metric)
    for step in zip(*batches):
        for arguments in step:
            metric(*arguments)
    return metric.get_metric(reset=True)
