import functools
import gc
import itertools
import math
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from allennlp.common import Params, util
from allennlp.common.checks import ConfigurationError
from allennlp.data import Instance, TensorDict, Vocabulary
from allennlp.data.data_loaders import DataLoader, MultiProcessDataLoader
from allennlp.data.data_loaders import MultiTaskDataLoader as AllenNlpMultiTaskDataLoader
from allennlp.data.data_loaders.multitask_data_loader import maybe_shuffle_instances
from allennlp.data.dataset_readers import MultiTaskDatasetReader
from allennlp.nn import util as nn_util

from allennlp_multitask.common.random_state import data_random_state, set_random_state
from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.data.batch import Batch
from allennlp_multitask.data.data_loaders.mixed_fields import mixed_fields_error
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


class _Resume(NamedTuple):
    """Where an earlier run stopped (see `MultiTaskDataLoader.resume`)."""

    epoch_random_states: List[Dict[str, Any]]
    epoch_task_counts: List[Dict[str, int]]
    epochs_completed: int
    batches_completed: int
    random_state: Dict[str, Any]


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
    - A batch whose instances do not all have the same fields fails naming the task, the field, and
      where in the task's file an instance has it and one lacks it (or the tasks a mixed batch holds);
      AllenNLP's said only "You cannot construct a Batch with non-homogeneous Instances".
    - Under distributed training, with every task in memory (no `max_instances_in_memory`), it checks
      once per epoch, in one collective, whether every worker's batches hold the same tasks, batch by
      batch, and if so says so in each batch (its `task` list is a `CheckedTasks`): the model then runs
      its heads without asking the other workers at each batch whether they run the same.
    - It is not part of a reference cycle (AllenNLP's keeps itself through its per-task iterators), so
      its instances are freed as soon as it is no longer used, not at the collector's next full pass.
    - It can take up an earlier run's iteration where that run stopped (`state_dict` and `resume`, which
      our `gradient_descent` trainer uses for `allennlp train -r`), giving the batches that run would
      have gone on to give, without making the tensors of those it had already given.
    - Its length is the number of batches the epoch gives, also with `instances_per_epoch` (AllenNLP
      counted `instances_per_epoch` once per task, e.g. 12 batches for the 6 of 24 instances in batches of 4
      over two tasks, which misled progress bars and the learning rate schedulers that lay out an epoch:
      AllenNLP issue 5732). Each task's count for an epoch is drawn from the `sampler` once, when the
      length or the iteration first asks for it, and that epoch then gives that many; during an epoch,
      the length is that epoch's.

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
        # The state of Python's and NumPy's generators as each iteration (epoch) began.
        self._epoch_random_states: List[Dict[str, Any]] = []
        # With `instances_per_epoch`: how many instances each task gave each epoch begun, and will give the next.
        self._epoch_task_counts: List[Dict[str, int]] = []
        self._next_task_counts: Optional[Dict[str, int]] = None
        # The number of batches of the iteration begun and not yet run to its end, where it has a number.
        self._batches_in_progress: Optional[int] = None
        self._resume: Optional[_Resume] = None

    def __len__(self) -> int:
        """
        The number of batches of the iteration in progress (begun and not yet run to its end), or else of
        the next one; `TypeError` where a task is read lazily and all of it is used (no length, as AllenNLP).
        """
        if self._batches_in_progress is not None:
            return self._batches_in_progress
        if self._replays_next_epoch():
            return 0
        if self._instances_per_epoch is None:
            return super().__len__()
        return self.scheduler.count_batches(self._next_epoch_task_counts())

    def _replays_next_epoch(self) -> bool:
        """Whether the next iteration is of an epoch the resumed run finished (and gives no batches)."""
        return self._resume is not None and len(self._epoch_random_states) < self._resume.epochs_completed

    def _next_epoch_task_counts(self) -> Dict[str, int]:
        """
        How many instances each task gives in the next epoch (with `instances_per_epoch`): as the resumed
        run's epoch gave them, or drawn from the sampler once and kept until that epoch begins.
        """
        epoch, resume = len(self._epoch_random_states), self._resume
        if resume is not None and epoch < len(resume.epoch_task_counts):
            return resume.epoch_task_counts[epoch]
        if self._next_task_counts is None:
            self._next_task_counts = self._draw_task_counts()
        return self._next_task_counts

    def _draw_task_counts(self) -> Dict[str, int]:
        """Each task's share of `instances_per_epoch`, from the sampler's proportions, as AllenNLP's loader draws it."""
        proportions = self.sampler.get_task_proportions(self._loaders)  # type: ignore[union-attr]
        total = sum(proportions.values())
        return {
            task: math.floor(proportion * self._instances_per_epoch / total)  # type: ignore[operator]
            for task, proportion in proportions.items()
        }

    def _begin_epoch(self, epoch_random_state: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, int]]:
        """
        Records the epoch's task counts (with `instances_per_epoch`, drawn first if not yet) and the state
        of the data's generators as it begins (by default, now), and returns the counts.
        """
        counts = None if self._instances_per_epoch is None else self._next_epoch_task_counts()
        self._next_task_counts = None
        if counts is not None:
            self._epoch_task_counts.append(counts)
        self._epoch_random_states.append(epoch_random_state or data_random_state())
        return counts

    def _epoch_instances(self, counts: Optional[Dict[str, int]]) -> Dict[str, Iterable[Instance]]:
        """Each task's instances for the epoch: `counts` of each, cycling on across epochs; all without counts."""
        if counts is None:
            return self._get_instances_for_epoch()
        return {task: itertools.islice(self._iterators[task], count) for task, count in counts.items()}

    def _in_progress(self, batches: Iterable[TensorDict], count: Optional[int]) -> Iterator[TensorDict]:
        """`batches`, whose number `count` is the loader's length until they run out."""
        self._batches_in_progress = count
        return self._until_exhausted(batches)

    def _until_exhausted(self, batches: Iterable[TensorDict]) -> Iterator[TensorDict]:
        yield from batches
        self._batches_in_progress = None

    def __iter__(self) -> Iterator[TensorDict]:
        epoch, resume = len(self._epoch_random_states), self._resume
        if self._replays_next_epoch():
            return self._in_progress(self._replay_finished_epoch(resume.epoch_random_states[epoch]), 0)  # type: ignore[union-attr]
        skip = 0
        if resume is not None:
            skip = resume.batches_completed
            set_random_state(resume.epoch_random_states[epoch] if skip else resume.random_state)
        counts = self._begin_epoch()
        self._resume = None
        count = None if counts is None else self.scheduler.count_batches(counts)
        batches, checked = self._checked_schedule(self.scheduler.batch_instances(self._epoch_instances(counts)))
        if skip:
            return self._in_progress(self._skipping(batches, skip, resume.random_state, checked), count)  # type: ignore[union-attr]
        return self._in_progress((self._tensors(instances, checked) for instances in batches), count)

    def _tensors(self, instances: List[Any], checked: bool = False) -> TensorDict:
        device = -1 if self.cuda_device is None else self.cuda_device
        try:
            batch = Batch(instances)
        except ConfigurationError:
            mixed_fields = mixed_fields_error(instances, self.readers, self.data_paths)
            if mixed_fields is None:
                raise
            raise mixed_fields from None
        tensors = nn_util.move_to_device(batch.as_tensor_dict(), device)
        if checked:
            tensors["task"] = CheckedTasks(tensors["task"])
        return tensors

    def _checked_schedule(self, batches: Iterable[List[Instance]]) -> Tuple[Iterable[List[Instance]], bool]:
        """
        The epoch's batches, and whether they are known to hold the same tasks on every worker, batch by
        batch: under distributed training with every task in memory, the epoch's batches are known, and
        one collective tells.
        """
        if not util.is_distributed() or self._max_instances_in_memory:
            return batches, False
        batches = list(batches)
        tasks = [tuple(sorted({instance["task"].metadata for instance in batch})) for batch in batches]
        return batches, same_schedule_on_every_worker(tasks)

    def _replay_finished_epoch(self, epoch_random_state: Dict[str, Any]) -> Iterator[TensorDict]:
        """An epoch the resumed run finished: no batches; its draws replayed if later epochs depend on them."""
        counts = self._begin_epoch(epoch_random_state)
        if counts is not None:  # Each task's instances cycle on across epochs.
            set_random_state(epoch_random_state)
            for _ in self.scheduler.batch_instances(self._epoch_instances(counts)):
                pass
        return iter(())

    def _skipping(
        self, batches: Iterable[List[Any]], skip: int, random_state: Dict[str, Any], checked: bool
    ) -> Iterator[TensorDict]:
        """
        The epoch's batches, the first `skip` (which the trainer skips) empty; then the generators as the
        resumed run left them.
        """
        batches = iter(batches)
        for _ in itertools.islice(batches, skip):
            yield {}
        set_random_state(random_state)
        for instances in batches:
            yield self._tensors(instances, checked)

    def state_dict(self) -> Dict[str, Any]:
        """
        What `resume` needs of this loader: the state of the data's random generators as each epoch began,
        and with `instances_per_epoch` how many instances each task gave in each.
        """
        return {
            "epoch_random_states": list(self._epoch_random_states),
            "epoch_task_counts": list(self._epoch_task_counts),
        }

    def resume(
        self, state: Dict[str, Any], epochs_completed: int, batches_completed: int, random_state: Dict[str, Any]
    ) -> None:
        """
        Makes the next iterations take up those of an earlier run (same configuration) stopped after
        `epochs_completed` epochs and `batches_completed` batches into the next: the iterations of the
        finished epochs give no batches, the next one gives `batches_completed` empty ones (for the
        trainer to skip), then the batches the earlier run would have gone on to give, with every random
        generator as the earlier run left them.

        # Parameters

        state : `Dict[str, Any]`
            The earlier run's loader's `state_dict()`.
        epochs_completed : `int`
        batches_completed : `int`
        random_state : `Dict[str, Any]`
            The generators when the earlier run stopped (`allennlp_multitask.common.random_state`).
        """
        self._resume = _Resume(
            state["epoch_random_states"],
            state.get("epoch_task_counts", []),  # none in checkpoints written before they were kept
            epochs_completed,
            batches_completed,
            random_state,
        )
        self._next_task_counts = None  # Drawn for the epoch this loader would have begun with.

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
