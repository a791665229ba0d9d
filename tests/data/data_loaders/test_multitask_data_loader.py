"""Our multitask data loader reads and indexes with the garbage collector paused, and gives AllenNLP's batches."""

import gc
import weakref
from typing import Dict, Iterable, List

import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Instance, Vocabulary
from allennlp.data.data_loaders.multitask_data_loader import MultiTaskDataLoader as AllenNlpMultiTaskDataLoader
from allennlp.data.data_loaders.multitask_scheduler import HomogeneousRoundRobinScheduler
from allennlp.data.dataset_readers import MultiTaskDatasetReader
from allennlp.data.fields import LabelField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer
from allennlp.data.tokenizers import Token

from allennlp_multitask.data import MultiTaskDataLoader
from allennlp_multitask.data.data_loaders.multitask_data_loader import paused_gc


class RecordingReader(DatasetReader):
    """Five instances per read; records whether the garbage collector was on as it made each."""

    def __init__(self) -> None:
        super().__init__()
        self.collector_on: List[bool] = []

    def _read(self, file_path: str) -> Iterable[Instance]:
        for index in range(5):
            self.collector_on.append(gc.isenabled())
            tokens = [Token(f"{file_path}{word}") for word in range(index + 1)]
            yield Instance({"text": TextField(tokens), "label": LabelField(f"{file_path}{index % 2}")})

    def apply_token_indexers(self, instance: Instance) -> None:
        instance["text"].token_indexers = {"tokens": SingleIdTokenIndexer()}  # type: ignore


def make_loader(cls: type, readers: Dict[str, RecordingReader], **kwargs) -> AllenNlpMultiTaskDataLoader:
    return cls(
        reader=MultiTaskDatasetReader(readers),
        data_path={task: task for task in readers},
        scheduler=HomogeneousRoundRobinScheduler(batch_size=2),
        shuffle=False,
        **kwargs,
    )


@pytest.fixture(params=[True, False], ids=["collector on", "collector off"])
def collector_state(request: pytest.FixtureRequest) -> Iterable[bool]:
    enabled = gc.isenabled()
    (gc.enable if request.param else gc.disable)()
    yield request.param
    (gc.enable if enabled else gc.disable)()


def test_reading_and_indexing_pause_the_collector_and_leave_it_as_it_was(collector_state: bool):
    readers = {"a": RecordingReader(), "b": RecordingReader()}
    loader = make_loader(MultiTaskDataLoader, readers)  # Reads the tasks it keeps in memory.
    assert gc.isenabled() is collector_state
    assert [reader.collector_on for reader in readers.values()] == [[False] * 5, [False] * 5]
    vocab = Vocabulary.from_instances(loader.iter_instances())
    gc_during_indexing = []
    vocab.get_token_index = lambda *args: gc_during_indexing.append(gc.isenabled()) or 0  # type: ignore
    loader.index_with(vocab)
    assert gc.isenabled() is collector_state and gc_during_indexing and not any(gc_during_indexing)
    assert [len(reader.collector_on) for reader in readers.values()] == [5, 5]  # Read once.


def test_lazily_read_tasks_are_read_with_the_collector_untouched():
    readers = {"kept": RecordingReader(), "lazy": RecordingReader()}
    loader = make_loader(MultiTaskDataLoader, readers, max_instances_in_memory={"lazy": 2})
    loader.index_with(Vocabulary.from_instances(loader.iter_instances()))
    assert readers["kept"].collector_on == [False] * 5
    assert readers["lazy"].collector_on == [gc.isenabled()] * 5  # Read by the vocabulary pass, as by AllenNLP's.
    assert len(list(loader)) == 6  # 3 batches a task; the lazy task read again.
    assert len(readers["kept"].collector_on) == 5 and len(readers["lazy"].collector_on) == 10


def test_batches_are_allennlps():
    def batches(cls: type) -> List[Dict[str, torch.Tensor]]:
        loader = make_loader(cls, {"a": RecordingReader(), "b": RecordingReader()})
        loader.index_with(Vocabulary.from_instances(loader.iter_instances()))
        return [{"tokens": batch["text"]["tokens"]["tokens"], "label": batch["label"]} for batch in loader]

    ours, allennlps = batches(MultiTaskDataLoader), batches(AllenNlpMultiTaskDataLoader)
    assert len(ours) == len(allennlps) == 6
    for mine, theirs in zip(ours, allennlps):
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[key], theirs[key]) for key in mine)


def test_objects_made_while_paused_leave_the_young_generation_unexamined(collector_state: bool):
    frozen_before = gc.get_freeze_count()
    with paused_gc():
        made = [[index] for index in range(10000)]
    young = {id(item) for item in gc.get_objects(generation=0)}
    assert gc.get_freeze_count() == frozen_before and gc.isenabled() is collector_state
    assert all(gc.is_tracked(item) for item in made)
    # Python 3.12 starts with objects frozen (375 here); then nothing is moved (see the next test).
    if frozen_before == 0:
        assert not any(id(item) in young for item in made)


def test_objects_someone_froze_stay_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with paused_gc():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(
    "data_path, message",
    [
        # AllenNLP's loader: AttributeError: 'str' object has no attribute 'keys'.
        (
            "a.jsonl",
            r"one file per task: give a JSON object of task names to files, e\.g\. "
            r"'\{\"a\": \"a\.jsonl\", \"b\": \"b\.jsonl\"\}', not 'a\.jsonl'",
        ),
        # AllenNLP's loader: "Mismatch between readers (...) and data paths (...)".
        (
            {"a": "a", "c": "c"},
            r"a file for each task of the dataset reader, \['a', 'b'\]: no file for \['b'\], "
            r"files for unknown tasks \['c'\]",
        ),
    ],
)
def test_data_paths_that_are_not_one_file_per_task_name_the_tasks(data_path, message):
    readers = MultiTaskDatasetReader({"a": RecordingReader(), "b": RecordingReader()})
    with pytest.raises(ConfigurationError, match=message):
        MultiTaskDataLoader(reader=readers, data_path=data_path, scheduler=HomogeneousRoundRobinScheduler(batch_size=2))


def test_a_loader_no_longer_used_is_freed_without_the_collector():
    # AllenNLP's loader keeps itself through its per-task iterators, and with it every instance, until the
    # collector's next full pass.
    loader = make_loader(MultiTaskDataLoader, {"a": RecordingReader(), "b": RecordingReader()})
    reference = weakref.ref(loader)
    enabled = gc.isenabled()
    gc.disable()
    try:
        del loader
        assert reference() is None
    finally:
        if enabled:
            gc.enable()
