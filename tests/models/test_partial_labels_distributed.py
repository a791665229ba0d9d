"""
Partial labels under DistributedDataParallel (two CPU workers): a head whose label a worker's batch lacks
on every row still runs its labelled part there (on no rows), so that its metrics, which sum their counts
across workers at each update, pair up with the workers that have its label.
"""

import copy
from typing import Any

import pytest
import torch
from torch.nn.parallel import DistributedDataParallel

from allennlp_multitask.data.absent_labels import ABSENT_LABELS
from tests.distributed_workers import WORKERS, on_two_workers
from tests.models.test_multitask_distributed import model_with_three_heads, single_process_gradients, worker_batch

pytestmark = pytest.mark.distributed

# The rows of each worker's batch that lack their "classify" label: one on worker 0, all on worker 1.
CLASSIFY_ROWS_WITHOUT_LABEL = [[0], [0, 2, 4]]


def partial_batch(rank: int) -> dict[str, Any]:
    batch = worker_batch(rank, score_labels=True)
    unlabelled = CLASSIFY_ROWS_WITHOUT_LABEL[rank]
    batch[ABSENT_LABELS] = [("classify_label",) if row in unlabelled else () for row in range(len(batch["task"]))]
    return batch


def partial_steps(rank: int, model: Any, steps: int) -> dict[str, Any]:
    ddp = DistributedDataParallel(model)
    model.train()
    gradients: dict[str, torch.Tensor | None] = {}
    for step in range(steps):
        model.zero_grad(set_to_none=True)
        ddp(**partial_batch(rank))["loss"].backward()
        if step == 0:
            gradients = {name: parameter.grad for name, parameter in model.named_parameters()}
    return {"gradients": gradients, "metrics": model.get_metrics(reset=True)}


def test_counts_add_up_across_workers_where_one_has_no_label_of_a_head(vocab, tmp_path):
    model = model_with_three_heads(vocab)
    results = on_two_workers(partial_steps, model, 2, out_dir=tmp_path)

    single = copy.deepcopy(model)
    for _ in range(2):
        for rank in range(WORKERS):
            single(**partial_batch(rank))
    expected = single.get_metrics(reset=True)
    assert results[0]["metrics"] == results[1]["metrics"] == expected
    alone = [single_process_gradients(model, partial_batch(rank)) for rank in range(WORKERS)]
    for result in results:
        for name, gradient in result["gradients"].items():
            assert gradient is not None, name
            assert torch.allclose(gradient, (alone[0][name] + alone[1][name]) / WORKERS, atol=1e-7), name
