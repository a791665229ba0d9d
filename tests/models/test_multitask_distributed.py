"""
MultiTaskModel under DistributedDataParallel, as AllenNLP's trainer runs it with
`"distributed": {"cuda_devices": [-1, -1]}`: two CPU workers joined by a gloo process group. The workers
are forked from the test process (no re-import of AllenNLP), so each test takes a few seconds.
"""

import copy
from typing import Any

import pytest
import torch
from allennlp.common import Lazy
from allennlp.data import Vocabulary
from allennlp.models import MultiTaskModel as AllenNlpMultiTaskModel
from allennlp.models.heads import Head
from allennlp.nn.util import dist_reduce_sum
from torch.multiprocessing import ProcessRaisedException
from torch.nn.parallel import DistributedDataParallel

from allennlp_multitask import MultiTaskModel
from allennlp_multitask.models.loss_weighting import DynamicWeightAverage, UncertaintyLossWeighting
from tests.distributed_workers import WORKERS, on_two_workers
from tests.models.small_model import DIM, backbone, classifier

pytestmark = pytest.mark.distributed


class RowCountingHead(Head):
    """
    A scoring head whose metric, the number of labelled rows it saw, is summed across workers in
    `get_metrics` (like AllenNLP's ROUGE), not when it is updated.
    """

    def __init__(self, vocab: Vocabulary) -> None:
        super().__init__(vocab)
        self.projection = torch.nn.Linear(DIM, 1)
        self.labeled_rows = 0

    def forward(  # type: ignore
        self, encoded_text: torch.Tensor, label: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        scores = self.projection(encoded_text.mean(dim=1)).squeeze(-1)
        if label is None:
            return {"scores": scores}
        self.labeled_rows += len(label)
        return {"scores": scores, "loss": torch.nn.functional.mse_loss(scores, label.float())}

    def get_metrics(self, reset: bool = False) -> dict[str, float]:
        rows = float(dist_reduce_sum(self.labeled_rows))
        if reset:
            self.labeled_rows = 0
        return {"labeled_rows": rows}


def model_with_three_heads(vocab: Vocabulary, model_class: type = MultiTaskModel, **options: Any) -> Any:
    """
    Head "classify" (accuracy, summed across workers at each update), head "score" (a
    `RowCountingHead`), and head "spare", which no batch here feeds. Each head reads its own label field.
    """
    torch.manual_seed(0)
    return model_class(
        vocab,
        backbone(vocab),
        {"classify": classifier(vocab), "score": RowCountingHead(vocab), "spare": classifier(vocab)},
        arg_name_mapping={"classify": {"classify_label": "label"}, "score": {"score_label": "label"}},
        **options,
    )


def worker_batch(rank: int, score_labels: bool) -> dict[str, Any]:
    """Rows of "classify" and "score", different for each worker; "score" labels only if asked."""
    tasks = ["classify", "score", "classify", "score", "classify"]
    tokens = (torch.arange(15).view(5, 3) * (rank + 2)) % 10 + 2
    batch = {"text": {"tokens": {"tokens": tokens}}, "task": tasks, "classify_label": torch.tensor([rank, 0, 1, 0, 0])}
    if score_labels:
        batch["score_label"] = torch.tensor([0.0, 0.5 + rank, 0.0, -1.0, 0.0])
    return batch


def train_steps(rank: int, model: Any, steps: int) -> dict[str, Any]:
    """`steps` forward and backward passes of the worker's batch under DDP (no optimizer step)."""
    ddp = DistributedDataParallel(model)
    model.train()
    first_gradients: dict[str, torch.Tensor | None] = {}
    for step in range(steps):
        model.zero_grad(set_to_none=True)
        # Only worker 0 has "score" labels: "score" has a loss there and is idle on worker 1.
        ddp(**worker_batch(rank, score_labels=rank == 0))["loss"].backward()
        if step == 0:
            first_gradients = {name: parameter.grad for name, parameter in model.named_parameters()}
    return {"gradients": first_gradients, "metrics": model.get_metrics(reset=True)}


def single_process_gradients(model: MultiTaskModel, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """What one batch alone gives each parameter, outside any process group (zero where none)."""
    model = copy.deepcopy(model)
    model.train()
    model(**batch)["loss"].backward()
    return {
        name: torch.zeros_like(parameter) if parameter.grad is None else parameter.grad
        for name, parameter in model.named_parameters()
    }


def test_a_ddp_step_gives_each_parameter_the_mean_of_what_each_workers_batch_gives_alone(vocab, tmp_path):
    # Uncertainty weighting: its log-variances are parameters, which DDP averages like the others.
    model = model_with_three_heads(vocab, loss_weighting=Lazy(UncertaintyLossWeighting))
    results = on_two_workers(train_steps, model, 2, out_dir=tmp_path)

    alone = [single_process_gradients(model, worker_batch(rank, score_labels=rank == 0)) for rank in range(WORKERS)]
    for result in results:
        gradients = result["gradients"]
        for name in alone[0]:
            assert gradients[name] is not None, name
            assert torch.equal(gradients[name], (alone[0][name] + alone[1][name]) / WORKERS), name
        # No batch feeds "spare": its gradient is zero (not None, which DDP cannot give without
        # `find_unused_parameters`).
        spare = [name for name in gradients if name.startswith("_heads.spare.")]
        assert spare and all(torch.count_nonzero(gradients[name]) == 0 for name in spare)
        # "score" had a loss on worker 0 only: it gets half of worker 0's gradient.
        score_weight = "_heads.score.projection.weight"
        assert torch.count_nonzero(alone[0][score_weight]) > 0 and torch.count_nonzero(alone[1][score_weight]) == 0
        assert torch.equal(gradients[score_weight], alone[0][score_weight] / WORKERS)


def test_every_worker_reports_the_metrics_of_a_single_process_on_all_batches(vocab, tmp_path):
    model = model_with_three_heads(vocab)
    results = on_two_workers(train_steps, model, 2, out_dir=tmp_path)

    single = copy.deepcopy(model)
    for _ in range(2):
        for rank in range(WORKERS):
            single(**worker_batch(rank, score_labels=rank == 0))
    expected = single.get_metrics(reset=True)
    # Worker 1 never computed a loss for "score", but reports it: both workers ask the same heads for
    # their metrics, in the same order, so the sums across workers in `get_metrics` pair up.
    assert set(expected) == {"classify_accuracy", "score_labeled_rows"}
    assert results[0]["metrics"] == results[1]["metrics"] == expected


def test_allennlps_model_stops_at_the_second_ddp_step_where_a_head_had_no_loss(vocab, tmp_path):
    model = model_with_three_heads(vocab, AllenNlpMultiTaskModel)
    with pytest.raises(ProcessRaisedException, match="Expected to have finished reduction in the prior iteration"):
        on_two_workers(train_steps, model, 2, out_dir=tmp_path)


def forward_of_worker_tasks(rank: int, model: MultiTaskModel, tasks_of_worker: list[list[str]]) -> None:
    tasks = tasks_of_worker[rank]
    tokens = torch.arange(3 * len(tasks)).view(len(tasks), 3) % 10 + 2
    model(text={"tokens": {"tokens": tokens}}, task=tasks, label=torch.zeros(len(tasks), dtype=torch.long))


def test_workers_whose_batches_run_different_heads_stop_with_an_error(vocab, tmp_path):
    # As at the end of an epoch where one worker still has batches of a task that the other ran out of.
    model = MultiTaskModel(vocab, backbone(vocab), {"first": classifier(vocab), "second": classifier(vocab)})
    tasks_of_worker = [["first", "first"], ["first", "second"]]
    with pytest.raises(ProcessRaisedException, match=r"head\(s\) \['second'\] ran on only \[1\] of 2 workers"):
        on_two_workers(forward_of_worker_tasks, model, tasks_of_worker, out_dir=tmp_path)
    # Running the same heads, however many rows each, is fine.
    on_two_workers(
        forward_of_worker_tasks, model, [["first", "second"], ["second", "first", "first"]], out_dir=tmp_path
    )


def dwa_epoch(rank: int, model: MultiTaskModel) -> torch.Tensor:
    train_steps(rank, model, 2)
    return model._loss_weighting.loss_history[1].clone()


def test_dwa_averages_the_losses_of_all_workers(vocab, tmp_path):
    model = model_with_three_heads(vocab, loss_weighting=Lazy(DynamicWeightAverage))
    histories = on_two_workers(dwa_epoch, model, out_dir=tmp_path)

    single = copy.deepcopy(model)
    single.train()
    for _ in range(2):
        for rank in range(WORKERS):
            single(**worker_batch(rank, score_labels=rank == 0))
    single.get_metrics(reset=True)
    expected = single._loss_weighting.loss_history[1]  # NaN for "spare", which had no loss
    torch.testing.assert_close(histories[0], expected, equal_nan=True)
    torch.testing.assert_close(histories[1], histories[0], rtol=0, atol=0, equal_nan=True)
