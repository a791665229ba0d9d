"""
The multitask data loader's length is the number of batches its epoch gives, for every scheduler and sampler,
and the learning rate schedulers that lay out an epoch see that number (AllenNLP issue 5732).
"""

import json
import random
from typing import Any, Dict, Iterable, List, Mapping, Set, Type

import pytest
from allennlp.commands.train import train_model_from_file
from allennlp.common import Params, Registrable
from allennlp.data import DataLoader, DatasetReader, Instance
from allennlp.data.data_loaders.multitask_epoch_sampler import MultiTaskEpochSampler
from allennlp.data.data_loaders.multitask_scheduler import MultiTaskScheduler
from allennlp.data.dataset_readers import MultiTaskDatasetReader
from allennlp.data.fields import MetadataField
from allennlp.training.callbacks import TrainerCallback
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allennlp_multitask.common.random_state import data_random_state
from allennlp_multitask.data import MultiTaskDataLoader
from tests.conftest import EXAMPLE_CONFIG


class NumberedReader(DatasetReader):
    """`size` instances, each a `MetadataField` of its task's path and number: batches need no vocabulary."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def _read(self, file_path: str) -> Iterable[Instance]:
        for index in range(self.size):
            yield Instance({"number": MetadataField(f"{file_path}:{index}")})


@MultiTaskEpochSampler.register("test_random_proportions")
class RandomProportionsSampler(MultiTaskEpochSampler):
    """
    Draws each task's proportion at random from Python's generator, anew each epoch.

    Registered as a `MultiTaskEpochSampler` with name "test_random_proportions", for these tests only.
    """

    def get_task_proportions(self, data_loaders: Mapping[str, DataLoader]) -> Dict[str, float]:
        return {task: random.random() + 0.01 for task in data_loaders}


# How the tests build each registered scheduler and sampler from drawn numbers; a new registration fails
# `test_every_registered_scheduler_and_sampler_is_covered` until it is here.
SCHEDULERS = {
    "roundrobin": lambda draw, tasks, batch_size: {"batch_size": batch_size},
    "homogeneous_roundrobin": lambda draw, tasks, batch_size: {
        "batch_size": draw(st.one_of(st.just(batch_size), st.fixed_dictionaries({t: st.integers(1, 6) for t in tasks})))
    },
}
SAMPLERS = {
    "uniform": lambda draw, tasks: {},
    "weighted": lambda draw, tasks: {"weights": {task: draw(st.floats(0.1, 10)) for task in tasks}},
    "proportional": lambda draw, tasks: {},
    "temperature": lambda draw, tasks: {"temperature": draw(st.floats(0.5, 10))},
    "test_random_proportions": lambda draw, tasks: {},
}


def registered(base: Type[Registrable]) -> Set[str]:
    """The names registered under `base` by AllenNLP and by our package (not by tests)."""
    return {
        name for name in base.list_available() if base.resolve_class_name(name)[0].__module__.startswith("allennlp")
    }


def test_every_registered_scheduler_and_sampler_is_covered():
    assert registered(MultiTaskScheduler) <= set(SCHEDULERS)
    assert registered(MultiTaskEpochSampler) <= set(SAMPLERS)


def multitask_loader(sizes: Dict[str, int], **config: Any) -> MultiTaskDataLoader:
    readers = MultiTaskDatasetReader({task: NumberedReader(size) for task, size in sizes.items()})
    loader = DataLoader.from_params(Params(config), reader=readers, data_path={task: task for task in sizes})
    assert isinstance(loader, MultiTaskDataLoader)
    return loader


@st.composite
def loader_configs(draw: st.DrawFn) -> Dict[str, Any]:
    """Task sizes, and a data loader's configuration: any scheduler, any sampler, `instances_per_epoch` or not."""
    sizes = draw(st.dictionaries(st.sampled_from("abcd"), st.integers(1, 30), min_size=1, max_size=4))
    scheduler = draw(st.sampled_from(sorted(SCHEDULERS)))
    config: Dict[str, Any] = {
        "type": "multitask",
        "scheduler": {
            "type": scheduler,
            "drop_last": draw(st.booleans()),
            **SCHEDULERS[scheduler](draw, sizes, draw(st.integers(1, 6))),
        },
    }
    if draw(st.booleans()):
        sampler = draw(st.sampled_from(sorted(SAMPLERS)))
        config["sampler"] = {"type": sampler, **SAMPLERS[sampler](draw, sizes)}
        config["instances_per_epoch"] = draw(st.integers(0, 80))
    return {"sizes": sizes, **config}


def iterate_epoch(loader: MultiTaskDataLoader) -> List[Dict[str, Any]]:
    """One epoch's batches, checking that the loader's length before and during the epoch is their number."""
    announced = len(loader)
    batches = iter(loader)
    assert len(loader) == announced
    given = list(batches)
    assert len(given) == announced
    return given


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loader_configs())
def test_length_is_the_number_of_batches_each_epoch_gives(config):
    loader = multitask_loader(**config)
    for _ in range(3):
        iterate_epoch(loader)


def test_length_with_instances_per_epoch_counts_the_instances_once():
    # AllenNLP's loader said 12: 24 instances for each task.
    loader = multitask_loader(
        {"a": 20, "b": 20},
        type="multitask",
        scheduler={"type": "homogeneous_roundrobin", "batch_size": 4},
        sampler={"type": "uniform"},
        instances_per_epoch=24,
    )
    assert len(loader) == 6 and len(iterate_epoch(loader)) == 6


def test_a_resumed_loader_gives_the_stopped_runs_batches_and_their_number():
    # Each epoch's task counts are random: the resumed loader must give the counts the stopped run drew.
    def loader() -> MultiTaskDataLoader:
        return multitask_loader(
            {"a": 7, "b": 11, "c": 5},
            type="multitask",
            scheduler={"type": "roundrobin", "batch_size": 3},
            sampler={"type": "test_random_proportions"},
            instances_per_epoch=30,
        )

    def numbers(batches: List[Dict[str, Any]]) -> List[List[str]]:
        return [batch["number"] for batch in batches]

    random.seed(1)
    stopped, stop_after = loader(), 2
    len(stopped)  # As a learning rate scheduler asks, before the first epoch.
    finished = [numbers(iterate_epoch(stopped)) for _ in range(2)]
    position = iter(stopped)
    done = [next(position)["number"] for _ in range(stop_after)]
    state, generators = stopped.state_dict(), data_random_state()
    rest = [batch["number"] for batch in position]
    later = [numbers(iterate_epoch(stopped)) for _ in range(2)]

    random.seed(2)  # The resumed run's generators are wherever they are until the loader sets them.
    resumed = loader()
    len(resumed)
    resumed.resume(state, epochs_completed=2, batches_completed=stop_after, random_state=generators)
    assert [iterate_epoch(resumed) for _ in range(2)] == [[], []]  # The finished epochs, replayed.
    resumed_epoch = iterate_epoch(resumed)
    assert resumed_epoch[:stop_after] == [{}] * stop_after and numbers(resumed_epoch[stop_after:]) == rest
    assert done + rest != finished[-1]  # The epochs differ, so that the comparisons tell.
    assert [numbers(iterate_epoch(resumed)) for _ in range(2)] == later


@TrainerCallback.register("test_record_learning_rates")
class RecordLearningRates(TrainerCallback):
    """
    Appends the learning rate after each training batch, and the batch count the trainer was told
    (`len` of its data loader), to `learning_rates.jsonl` in the serialization directory.

    Registered as a `TrainerCallback` with name "test_record_learning_rates", for these tests only.

    # Parameters

    serialization_dir : `str`
    """

    def on_batch(  # type: ignore[override]
        self,
        trainer: Any,
        batch_inputs: Any,
        batch_outputs: Any,
        batch_metrics: Any,
        epoch: int,
        batch_number: int,
        is_training: bool,
        **kwargs: Any,
    ) -> None:
        if is_training:
            learning_rate = trainer.optimizer.param_groups[0]["lr"]
            with open(f"{self.serialization_dir}/learning_rates.jsonl", "a") as log:
                log.write(json.dumps({"lr": learning_rate, "told": len(trainer.data_loader)}) + "\n")


LEARNING_RATE = 0.01


@pytest.mark.slow
@pytest.mark.parametrize(
    "scheduler, last_learning_rate",
    [
        # One epoch: the slanted triangle ends at lr / ratio after its last step.
        ({"type": "slanted_triangular", "ratio": 32}, LEARNING_RATE / 32),
        ({"type": "linear_with_warmup", "warmup_steps": 2}, 0.0),
        ({"type": "polynomial_decay", "power": 2.0, "end_learning_rate": 0.001}, 0.001),
    ],
    ids=lambda value: value["type"] if isinstance(value, dict) else None,
)
def test_learning_rate_schedules_end_at_the_epochs_last_batch(in_repo_root, tmp_path, scheduler, last_learning_rate):
    # 24 instances an epoch in batches of 4 over two tasks: 6 batches, which AllenNLP's loader counted as 12.
    overrides = {
        "data_loader.sampler": {"type": "uniform"},
        "data_loader.instances_per_epoch": 24,
        "data_loader.scheduler.batch_size": 4,
        "trainer.num_epochs": 1,
        "trainer.optimizer.lr": LEARNING_RATE,
        "trainer.learning_rate_scheduler": scheduler,
        "trainer.callbacks": [{"type": "test_record_learning_rates"}],
    }
    run = tmp_path / "run"
    train_model_from_file(str(EXAMPLE_CONFIG), str(run), overrides=json.dumps(overrides))
    steps = [json.loads(line) for line in (run / "learning_rates.jsonl").read_text().splitlines()]
    assert [step["told"] for step in steps] == [len(steps)] * len(steps) and len(steps) == 6
    rates = [step["lr"] for step in steps]
    assert rates[-1] == pytest.approx(last_learning_rate) and rates[-2] != pytest.approx(last_learning_rate)
