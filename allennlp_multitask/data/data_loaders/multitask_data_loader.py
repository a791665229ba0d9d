import gc
from contextlib import contextmanager
from typing import Iterator

from allennlp.data import Vocabulary
from allennlp.data.data_loaders import DataLoader, MultiProcessDataLoader
from allennlp.data.data_loaders.multitask_data_loader import MultiTaskDataLoader as AllenNlpMultiTaskDataLoader


@contextmanager
def paused_gc() -> Iterator[None]:
    """
    Python's cyclic garbage collector off inside. On leaving, every object it tracks goes to its oldest
    generation unexamined (`gc.freeze()` then `gc.unfreeze()`), so that the collector's young and middle
    generations do not traverse what was made inside the moment it is back on; and the collector is on
    or off as it was. Objects someone else froze (`gc.get_freeze_count()`) are left frozen, and then
    nothing is moved.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()


@DataLoader.register("multitask", exist_ok=True)
class MultiTaskDataLoader(AllenNlpMultiTaskDataLoader):
    """
    AllenNLP's multitask data loader, taking the same arguments, that reads and indexes each task's
    instances with Python's cyclic garbage collector paused.

    Reading makes millions of small, long-lived objects (instances, fields, tokens); each of them counts
    towards the collector's thresholds, and as they pile up it traverses all of them again and again,
    freeing nothing: most of the time reading takes. AllenNLP's loader reads each task that keeps its
    instances in memory (no `max_instances_in_memory`) as it builds that task's loader; this one does so
    with the collector paused, and indexes with it paused. The collector is paused for those calls only:
    it is on again (if it was on) when they return, and runs as usual from then on. Lazily read tasks are
    read during the epoch, as AllenNLP does, with the collector untouched.

    Registered as a `DataLoader` with name "multitask", replacing AllenNLP's.

    # Parameters

    **kwargs
        AllenNLP's `MultiTaskDataLoader` arguments: `reader`, `data_path`, `scheduler`, `sampler`,
        `instances_per_epoch`, `num_workers`, `max_instances_in_memory`, `shuffle` and the others.
    """

    def _make_data_loader(self, key: str) -> MultiProcessDataLoader:
        with paused_gc():
            return super()._make_data_loader(key)

    def index_with(self, vocab: Vocabulary) -> None:
        with paused_gc():
            super().index_with(vocab)
