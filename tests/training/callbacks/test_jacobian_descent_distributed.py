"""
The `jacobian_descent` callback under AllenNLP's trainer on two CPU workers (gloo) with its default DDP
accelerator: the workers aggregate the Jacobian of the whole step, the same on each.
"""

from typing import Any, Dict, List, Optional

import pytest
import torch
from allennlp.data import Instance
from allennlp.data.fields import MetadataField
from allennlp.nn.parallel import TorchDdpAccelerator

from allennlp_multitask import MultiTaskModel
from allennlp_multitask.data.absent_labels import ABSENT_LABELS
from allennlp_multitask.training.callbacks.jacobian_descent import LEVELS
from tests.distributed_workers import WORKERS, on_two_workers
from tests.training.callbacks.trainer_setup import classifier_model, instances, train

pytestmark = pytest.mark.distributed

UPGRAD = {"type": "upgrad"}


def worker_batches(rank: int) -> List[Instance]:
    """
    Two mixed batches of two instances (heads a and b in each, both on the instance of task t), with texts
    of the worker's own (of another length on each: the backbone's outputs differ in size).
    """
    tokens = [("w1", "w2", "w3"), ("w7", "w5")][rank]
    return instances(["a", "t", "t", "b"], tokens)


def model() -> MultiTaskModel:
    return classifier_model(task_heads={"t": ["a", "b"]})


def train_on_worker(
    rank: int, model: MultiTaskModel, aggregator: Optional[Dict[str, Any]], level: str = "parameters"
) -> Dict[str, Any]:
    model, wrapped = TorchDdpAccelerator(local_rank=rank, world_size=WORKERS).wrap_model(model)
    metrics = train(
        model,
        worker_batches(rank),
        batch_size=2,
        aggregator=aggregator,
        level=level,
        lr=0.1,
        distributed=True,
        local_rank=rank,
        world_size=WORKERS,
        ddp_wrapped_model=wrapped,
    )
    return {"parameters": dict(model.named_parameters()), "metrics": metrics}


@pytest.mark.parametrize("level", LEVELS)
def test_workers_aggregate_the_jacobian_of_the_whole_step_and_stay_identical(tmp_path, level):
    # At the representation level, the workers share their rows' Gramian: that of rows spanning both.
    workers = on_two_workers(train_on_worker, model(), UPGRAD, level, out_dir=tmp_path)

    # One process, each step the two workers' batches accumulated: each row is then the mean of the
    # workers' rows, and UPGrad aggregates the same Jacobian as each worker should.
    batches = [
        instance for batch in (0, 2) for rank in range(WORKERS) for instance in worker_batches(rank)[batch : batch + 2]
    ]
    single = model()
    metrics = train(
        single, batches, batch_size=2, aggregator=UPGRAD, level=level, lr=0.1, num_gradient_accumulation_steps=WORKERS
    )

    for name, parameter in single.named_parameters():
        for rank, worker in enumerate(workers):
            assert torch.allclose(worker["parameters"][name], parameter, atol=1e-6), (rank, name)
    prefix = "representation_" if level == "representation" else ""
    for key in [f"training_{prefix}gradient_conflict_share", f"training_{prefix}gradient_cosine_mean"]:
        for worker in workers:
            assert worker["metrics"][key] == pytest.approx(metrics[key], abs=1e-6), key


@pytest.mark.parametrize("level", LEVELS)
def test_sum_trains_as_plain_distributed_training(tmp_path, level):
    plain = on_two_workers(train_on_worker, model(), None, out_dir=tmp_path)
    summed = on_two_workers(train_on_worker, model(), {"type": "sum"}, level, out_dir=tmp_path)
    for rank in range(WORKERS):
        for name, parameter in plain[rank]["parameters"].items():
            assert torch.allclose(summed[rank]["parameters"][name], parameter, atol=1e-6), (rank, name)


def partially_labelled_worker_batches(rank: int) -> List[Instance]:
    """`worker_batches`, where worker 1's instance of task t lacks its label: head b has no loss there."""
    batches = worker_batches(rank)
    for instance in batches:
        absent = ("label",) if rank == 1 and instance["task"].metadata == "t" else ()
        instance.add_field(ABSENT_LABELS, MetadataField(absent))
    return batches


def train_partially_labelled(rank: int, model: MultiTaskModel, level: str) -> Dict[str, Any]:
    model, wrapped = TorchDdpAccelerator(local_rank=rank, world_size=WORKERS).wrap_model(model)
    train(
        model,
        partially_labelled_worker_batches(rank),
        batch_size=2,
        aggregator=UPGRAD,
        level=level,
        lr=0.1,
        distributed=True,
        local_rank=rank,
        world_size=WORKERS,
        ddp_wrapped_model=wrapped,
    )
    return {"parameters": dict(model.named_parameters())}


@pytest.mark.parametrize("level", LEVELS)
def test_a_head_with_a_loss_on_one_worker_only_gets_a_zero_row_on_the_other(tmp_path, level):
    workers = on_two_workers(train_partially_labelled, model(), level, out_dir=tmp_path)

    batches = [
        instance
        for batch in (0, 2)
        for rank in range(WORKERS)
        for instance in partially_labelled_worker_batches(rank)[batch : batch + 2]
    ]
    single = model()
    train(
        single, batches, batch_size=2, aggregator=UPGRAD, level=level, lr=0.1, num_gradient_accumulation_steps=WORKERS
    )

    for name, parameter in single.named_parameters():
        for rank, worker in enumerate(workers):
            assert torch.allclose(worker["parameters"][name], parameter, atol=1e-6), (rank, name)
