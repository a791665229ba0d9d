"""
Stamps the phases of `allennlp train` for benchmarks/train_end_to_end.py, which runs the command with
`--include-package phase_probe` (this folder on PYTHONPATH): importing this module wraps, in this process
only, the AllenNLP functions where each phase happens. It adds two clock readings per call, and per
instance read; the command's work is unchanged.

- reading: inside each task loader's first pass over its reader, step by step (a loader that keeps its
  instances reads them as it is built; a lazy one, while the vocabulary is counted);
- vocabulary: `Vocabulary.from_instances`, less the reading inside it;
- indexing: the data loaders' `index_with`; epoch: `_train_epoch`; validation: `_validation_loss`;
- archive: `archive_model`, after which the phases are written out.

With $PHASE_PROBE_ALLENNLP_CLASSES set, it also puts AllenNLP's own multitask data loader back under
"multitask" and AllenNLP's own `TrainModel` under "default", in place of ours: the "before" (ours read
and index with the garbage collector paused, tensorise a batch at a time, and free the instances when
training ends).
"""

import functools
import os
from typing import Any, Callable, Iterator

from allennlp.commands import train
from allennlp.data import Vocabulary
from allennlp.data.data_loaders import DataLoader, MultiProcessDataLoader
from allennlp.data.data_loaders.multitask_data_loader import MultiTaskDataLoader
from allennlp.training import GradientDescentTrainer
from phase_clock import PhaseClock, now

CLOCK = PhaseClock()


def timed(phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        with CLOCK.phase(phase):
            return function(*args, **kwargs)

    return call


def timed_steps(phase: str, iterator: Iterator[Any]) -> Iterator[Any]:
    """The items of `iterator`, the time spent producing each added to `phase`."""
    while True:
        start = now()
        try:
            item = next(iterator)
        except StopIteration:
            CLOCK.add(phase, start, now())
            return
        CLOCK.add(phase, start, now())
        yield item


def iter_instances(loader: MultiProcessDataLoader) -> Iterator[Any]:
    instances = ORIGINAL["iter_instances"](loader)
    return instances if loader._instances else timed_steps("reading", instances)  # Cached: not a read.


def from_instances(cls: type, *args: Any, **kwargs: Any) -> Vocabulary:
    reading_before = {clock: seconds["reading"] for clock, seconds in CLOCK.seconds.items()}
    with CLOCK.phase("vocabulary"):
        vocabulary = ORIGINAL["from_instances"](*args, **kwargs)
    for clock, seconds in CLOCK.seconds.items():  # The reading it drove counts as reading.
        seconds["vocabulary"] -= seconds["reading"] - reading_before[clock]
    return vocabulary


def archive_model(*args: Any, **kwargs: Any) -> None:
    with CLOCK.phase("archive"):
        ORIGINAL["archive_model"](*args, **kwargs)
    CLOCK.write()


ORIGINAL = {
    "iter_instances": MultiProcessDataLoader.iter_instances,
    "from_instances": Vocabulary.from_instances,
    "archive_model": train.archive_model,
}
MultiProcessDataLoader.iter_instances = functools.wraps(ORIGINAL["iter_instances"])(iter_instances)
MultiProcessDataLoader.index_with = timed("indexing", MultiProcessDataLoader.index_with)
Vocabulary.from_instances = classmethod(functools.wraps(Vocabulary.from_instances.__func__)(from_instances))
GradientDescentTrainer._train_epoch = timed("epoch", GradientDescentTrainer._train_epoch)
GradientDescentTrainer._validation_loss = timed("validation", GradientDescentTrainer._validation_loss)
train.archive_model = functools.wraps(ORIGINAL["archive_model"])(archive_model)
if os.environ.get("PHASE_PROBE_ALLENNLP_CLASSES"):
    DataLoader.register("multitask", exist_ok=True)(MultiTaskDataLoader)
    train.TrainModel.register("default", constructor="from_partial_objects", exist_ok=True)(train.TrainModel)
