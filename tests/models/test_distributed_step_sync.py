"""
What a distributed training step asks of the other workers and of the device: the bundled example
under AllenNLP's trainer on two CPU workers (gloo, DDP), every collective and every read of a tensor to
the host counted, by step, and by whether our package or AllenNLP (its trainer, its metrics) made it.
"""

import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import torch
import torch.distributed as dist
from allennlp.common import Params
from allennlp.data import DataLoader, DatasetReader, Vocabulary
from allennlp.models import Model
from allennlp.nn.parallel import TorchDdpAccelerator
from allennlp.training import GradientDescentTrainer
from allennlp.training.callbacks import TrainerCallback
from torch.multiprocessing import ProcessRaisedException
from torch.overrides import TorchFunctionMode

import allennlp_multitask
from allennlp_multitask.data.worker_schedule import CheckedTasks
from tests.conftest import EXAMPLE_CONFIG
from tests.distributed_workers import WORKERS, on_two_workers

pytestmark = pytest.mark.distributed  # two forked gloo workers, each test under a second

PACKAGE = str(Path(allennlp_multitask.__file__).parent)
TORCH = str(Path(torch.__file__).parent)
COLLECTIVES = [
    "all_reduce", "all_gather", "all_gather_object", "broadcast", "broadcast_object_list", "reduce",
    "reduce_scatter", "gather", "gather_object", "scatter", "all_to_all", "barrier", "monitored_barrier",
]  # fmt: skip
HOST_READS = {
    torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.__bool__, torch.Tensor.__float__,
    torch.Tensor.__int__, torch.Tensor.__index__,
}  # fmt: skip


def caller() -> str:
    """Who made the call being counted: `"ours"` if the code that called into PyTorch is our package's."""
    outside = [frame for frame in traceback.extract_stack()[:-3] if not frame.filename.startswith(TORCH)]
    return "ours" if outside[-1].filename.startswith(PACKAGE) else "others"


class Tally:
    """Events by step: (collective or host read, which function, who made it), counted."""

    def __init__(self) -> None:
        self.steps: List[Counter] = [Counter()]

    def count(self, kind: str, name: str) -> None:
        self.steps[-1][kind, name, caller()] += 1


class HostReads(TorchFunctionMode):
    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self.tally = tally

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func in HOST_READS:
            self.tally.count("host read", func.__name__)
        return func(*args, **(kwargs or {}))


class StepMarker(TrainerCallback):
    def __init__(self, tally: Tally) -> None:
        super().__init__("unused")
        self.tally = tally

    def on_batch(self, *args: Any, **kwargs: Any) -> None:
        self.tally.steps.append(Counter())


def count_collectives(monkeypatch: Any, tally: Tally) -> None:
    for name in COLLECTIVES:
        function = getattr(dist, name)

        def counted(*args: Any, __name: str = name, __function: Any = function, **kwargs: Any) -> Any:
            tally.count("collective", __name)
            return __function(*args, **kwargs)

        monkeypatch.setattr(dist, name, counted)


def train_counting(rank: int, vocab: Vocabulary, overrides: Dict[str, Any]) -> List[Dict[Tuple[str, str, str], int]]:
    """One epoch of the example's training on this worker, with what each step asked, step by step."""
    params = Params.from_file(str(EXAMPLE_CONFIG), params_overrides=overrides)
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    loader = DataLoader.from_params(params.pop("data_loader"), reader=reader, data_path=params.pop("train_data_path"))
    loader.index_with(vocab)
    torch.manual_seed(0)
    model = Model.from_params(vocab=vocab, params=params.pop("model"))
    model, wrapped = TorchDdpAccelerator(local_rank=rank, world_size=WORKERS).wrap_model(model)
    tally = Tally()
    trainer = GradientDescentTrainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        loader,
        num_epochs=1,
        callbacks=[StepMarker(tally)],
        enable_default_callbacks=False,
        distributed=True,
        local_rank=rank,
        world_size=WORKERS,
        ddp_wrapped_model=wrapped,
    )
    with pytest.MonkeyPatch.context() as monkeypatch, HostReads(tally):
        count_collectives(monkeypatch, tally)
        trainer.train()
    return [dict(step) for step in tally.steps]


def example_vocab() -> Vocabulary:
    params = Params.from_file(str(EXAMPLE_CONFIG))
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    files = params.pop("train_data_path").as_dict()
    instances = (instance for task, path in files.items() for instance in reader.read(path, force_task=task))
    return Vocabulary.from_instances(instances)


def test_a_distributed_step_adds_no_collective_and_reads_only_the_loss_to_the_host(in_repo_root, tmp_path):
    workers = on_two_workers(train_counting, example_vocab(), {}, out_dir=tmp_path)

    for steps in workers:
        # 14 batches (one task each, the tasks in turn), and what came after the last (the epoch's end).
        first, *steady, end = steps
        assert len(steady) == 13
        for step in steady:
            ours = {event: count for event, count in step.items() if event[2] == "ours"}
            # The model's check that its loss is finite (which AllenNLP's trainer reads too, just after).
            assert ours == {("host read", "item", "ours"): 1}, step
        assert steady[0] == steady[-1]  # The trainer's and its metrics' own, alike at every step.
        # The data loader's check of every worker's batches, once for the epoch.
        assert first[("collective", "all_gather_object", "ours")] == 1
        # The metrics, reset at the end of the epoch, ask which heads ran on any worker.
        assert end[("collective", "all_reduce", "ours")] == 1
    assert workers[0] == workers[1]


def worker_overrides(rank: int, other_batches: bool) -> Dict[str, Any]:
    # With `other_batches`, worker 1 runs out of sentiment batches after two: its fifth batch is topic's,
    # worker 0's sentiment's.
    return {"data_loader.scheduler.batch_size": {"sentiment": 50, "topic": 10}} if other_batches and rank == 1 else {}


def checked_batches(rank: int, vocab: Vocabulary, other_batches: bool) -> List[bool]:
    """Whether each batch of the worker's epoch says the data loader checked every worker's tasks."""
    params = Params.from_file(str(EXAMPLE_CONFIG), params_overrides=worker_overrides(rank, other_batches))
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    loader = DataLoader.from_params(params.pop("data_loader"), reader=reader, data_path=params.pop("train_data_path"))
    loader.index_with(vocab)
    return [isinstance(batch["task"], CheckedTasks) for batch in loader]


def train_with_other_batches(rank: int, vocab: Vocabulary) -> Any:
    return train_counting(rank, vocab, worker_overrides(rank, other_batches=True))


def test_where_workers_batches_hold_other_tasks_the_model_checks_each_batch_and_stops_with_the_clear_error(
    in_repo_root, tmp_path
):
    vocab = example_vocab()
    assert on_two_workers(checked_batches, vocab, False, out_dir=tmp_path) == [[True] * 14] * WORKERS
    assert on_two_workers(checked_batches, vocab, True, out_dir=tmp_path) == [[False] * 14, [False] * 12]

    with pytest.raises(ProcessRaisedException, match=r"every worker must run the same heads on each batch"):
        on_two_workers(train_with_other_batches, vocab, out_dir=tmp_path)
