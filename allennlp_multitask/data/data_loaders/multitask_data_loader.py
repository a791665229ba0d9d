import functools
import gc
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

from allennlp.common import Params, util
from allennlp.common.checks import ConfigurationError
from allennlp.data import Instance, TensorDict, Vocabulary
from allennlp.data.data_loaders import DataLoader, MultiProcessDataLoader
from allennlp.data.data_loaders import MultiTaskDataLoader as AllenNlpMultiTaskDataLoader
from allennlp.data.data_loaders.multitask_data_loader import maybe_shuffle_instances
from allennlp.data.dataset_readers import MultiTaskDatasetReader
from allennlp.nn import util as nn_util

from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.data.batch import Batch
from allennlp_multitask.data.worker_schedule import CheckedTasks, same_schedule_on_every_worker


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


def check_data_paths(reader: MultiTaskDatasetReader, data_path: Any) -> None:
    """
    Raises `ConfigurationError` unless `data_path` maps each of the reader's tasks to a file, naming what
    is missing or unknown (AllenNLP's loader raised `AttributeError` for a single path, and "Mismatch
    between readers and data paths" otherwise).
    """
    tasks = sorted(reader.readers)
    if not isinstance(data_path, Mapping):  # A dict, or AllenNLP's `Params`.
        example = "{" + ", ".join(f'"{task}": "{task}.jsonl"' for task in tasks) + "}"
        raise ConfigurationError(
            f"The multitask data loader reads one file per task: give a JSON object of task names to files, "
            f"e.g. '{example}', not {data_path!r}."
        )
    missing, unknown = sorted(set(tasks) - set(data_path)), sorted(set(data_path) - set(tasks))
    if missing or unknown:
        raise ConfigurationError(
            f"The multitask data loader needs a file for each task of the dataset reader, {tasks}: "
            f"no file for {missing}, files for unknown tasks {unknown}."
        )


@replace_registration(DataLoader, "multitask")
class MultiTaskDataLoader(AllenNlpMultiTaskDataLoader):
    """
    AllenNLP's multitask data loader, taking the same arguments and giving the same batches, with these
    changes:

    - It takes a `batch_size`: given, it is the `scheduler`'s `batch_size` (for every task). `allennlp
      evaluate --batch-size N` sets the data loader's `batch_size`, which AllenNLP's loader refuses; here
      it sets the batch size of the evaluation.
    - Data paths that are not one file per task of the reader (a single path given to `allennlp
      evaluate`, a missing or misspelled task) fail at construction, naming the tasks.
    - It reads and indexes each task's instances with Python's cyclic garbage collector paused. Reading
      makes millions of small, long-lived objects (instances, fields, tokens); each counts towards the
      collector's thresholds, and as they pile up it traverses all of them again and again, freeing
      nothing: most of the time reading takes. AllenNLP's loader reads each task that keeps its instances
      in memory (no `max_instances_in_memory`) as it builds that task's loader; this one does so with the
      collector paused, and indexes with it paused. The collector is on again (if it was on) when those
      calls return, and runs as usual from then on. Lazily read tasks are read during the epoch, as
      AllenNLP does, with the collector untouched.
    - It makes each batch's tensors with our `Batch` (`allennlp_multitask.data.batch`), which gives what
      AllenNLP's `Batch` gives, with less Python work per instance.
    - Under distributed training, with every task in memory (no `max_instances_in_memory`), it checks
      once per epoch, in one collective, whether every worker's batches hold the same tasks, batch by
      batch, and if so says so in each batch (its `task` list is a `CheckedTasks`): the model then runs
      its heads without asking the other workers at each batch whether they run the same.
    - It is not part of a reference cycle (AllenNLP's keeps itself through its per-task iterators), so
      its instances are freed as soon as it is no longer used, not at the collector's next full pass.

    Registered as a `DataLoader` with name "multitask", replacing AllenNLP's registration.

    # Parameters

    reader : `MultiTaskDatasetReader`
    data_path : `Dict[str, str]`
        A file for each task of `reader`.
    batch_size : `int`, optional (default = `None`)
        Overrides the scheduler's `batch_size` (a configuration key: the scheduler is built with it).
    **kwargs
        AllenNLP's `MultiTaskDataLoader` arguments: `scheduler`, `sampler`, `instances_per_epoch`,
        `num_workers`, `max_instances_in_memory`, `shuffle` and the others.
    """

    def __init__(self, reader: MultiTaskDatasetReader, data_path: Dict[str, str], **kwargs: Any) -> None:
        check_data_paths(reader, data_path)
        super().__init__(reader, data_path, **kwargs)
        # AllenNLP's iterators call a lambda that holds `self`: a reference cycle, which kept every
        # instance alive until the collector's next full pass (at exit, after `allennlp train`).
        self._iterators = {
            key: util.cycle_iterator_function(functools.partial(maybe_shuffle_instances, loader, self._shuffle))
            for key, loader in self._loaders.items()
        }

    def __iter__(self) -> Iterator[TensorDict]:
        epoch_instances = self._get_instances_for_epoch()
        device = -1 if self.cuda_device is None else self.cuda_device
        batches: Iterable[List[Instance]] = self.scheduler.batch_instances(epoch_instances)
        checked = False
        if util.is_distributed() and not self._max_instances_in_memory:
            # Every task is in memory: the epoch's batches are known, and one collective tells whether
            # every worker's hold the same tasks, batch by batch.
            batches = list(batches)
            checked = same_schedule_on_every_worker(
                [tuple(sorted({instance["task"].metadata for instance in batch})) for batch in batches]
            )
        for instances in batches:
            tensors = nn_util.move_to_device(Batch(instances).as_tensor_dict(), device)
            if checked:
                tensors["task"] = CheckedTasks(tensors["task"])
            yield tensors

    @classmethod
    def from_params(  # type: ignore[override]
        cls,
        params: Params,
        constructor_to_call: Optional[Callable[..., "MultiTaskDataLoader"]] = None,
        constructor_to_inspect: Optional[Callable[..., Any]] = None,
        **extras: Any,
    ) -> "MultiTaskDataLoader":
        batch_size = params.pop_int("batch_size", None)
        if batch_size is not None and "scheduler" in params:
            scheduler = params.pop("scheduler")
            scheduler["batch_size"] = batch_size
            params["scheduler"] = scheduler
        return super().from_params(params, constructor_to_call, constructor_to_inspect, **extras)

    def _make_data_loader(self, key: str) -> MultiProcessDataLoader:
        with paused_gc():
            return super()._make_data_loader(key)

    def index_with(self, vocab: Vocabulary) -> None:
        with paused_gc():
            super().index_with(vocab)
