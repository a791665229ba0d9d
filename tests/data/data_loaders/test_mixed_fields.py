"""A batch whose instances lack a field others have fails naming the task, the field, and where they are."""

import re
from typing import Any, Iterable, Set

import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DataLoader, DatasetReader, Instance
from allennlp.data.dataset_readers import MultiTaskDatasetReader
from allennlp.data.fields import MetadataField


class FieldsReader(DatasetReader):
    """Six instances with an `x` field, and a `y` field in those whose number (from 1) is in `with_y`."""

    def __init__(self, with_y: Set[int]) -> None:
        super().__init__()
        self.with_y = with_y

    def _read(self, file_path: str) -> Iterable[Instance]:
        for number in range(1, 7):
            fields = {"x": MetadataField(number)}
            if number in self.with_y:
                fields["y"] = MetadataField(number)
            yield Instance(fields)


def iterate(readers: dict[str, FieldsReader], **config: Any) -> None:
    loader = DataLoader.from_params(
        Params({"type": "multitask", **config}),
        reader=MultiTaskDatasetReader(readers),
        data_path={task: f"data/{task}.jsonl" for task in readers},
    )
    for _ in loader:
        pass


@pytest.mark.parametrize("max_instances_in_memory", [None, {"partly": 2}], ids=["kept in memory", "read lazily"])
def test_a_task_with_and_without_a_field_names_where_in_its_file(max_instances_in_memory):
    message = (
        "Task 'partly' has instances with the field 'y' and instances without it, and one batch holds instances "
        "with the same fields only: in data/partly.jsonl, instance 3 has 'y' and instance 1 lacks it"
    )
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        iterate(
            {"partly": FieldsReader(with_y={3, 4, 5, 6})},
            scheduler={"type": "homogeneous_roundrobin", "batch_size": 6},
            max_instances_in_memory=max_instances_in_memory,
        )


def test_a_batch_mixing_tasks_with_different_fields_names_the_tasks():
    message = (
        "A batch mixes tasks whose instances have different fields: those of task(s) ['with'] have the field 'y', "
        "those of task(s) ['without'] do not"
    )
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        iterate(
            {"with": FieldsReader(with_y={1, 2, 3, 4, 5, 6}), "without": FieldsReader(with_y=set())},
            scheduler={"type": "roundrobin", "batch_size": 4},
        )
