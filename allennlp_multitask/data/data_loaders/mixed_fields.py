"""
The error for a batch that AllenNLP's `Batch` refuses because some of its instances lack a field the others
have, naming the task, the field and where in the task's data file an instance has it and one lacks it.

Instances do not record where they were read from: that is found again only when the error happens, by
reading the task's file anew with its reader and counting its instances, so that valid data costs nothing.
Readers do not tell which line an instance came from, so the message gives the instance's number in the
order the reader gives them (from 1), which is its line number where the reader makes one instance a line.
"""

from collections import defaultdict
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader, Instance


def field_some_instances_lack(instances: Sequence[Instance]) -> Optional[str]:
    """The first field (by name) that some of `instances` have and others lack; `None` if they all have the same."""
    names = [set(instance.fields) for instance in instances]
    return min(set.union(*names) - set.intersection(*names), default=None)


def first_with_and_without(instances: Iterable[Instance], field: str) -> Tuple[Optional[int], Optional[int]]:
    """The numbers (from 1) of the first of `instances` that has `field` and the first that lacks it."""
    first: Dict[bool, int] = {}
    for number, instance in enumerate(instances, start=1):
        first.setdefault(field in instance.fields, number)
        if len(first) == 2:
            break
    return first.get(True), first.get(False)


def _instance_number(number: Optional[int]) -> str:
    return "none on reading it again" if number is None else f"instance {number}"


def mixed_fields_error(
    instances: Sequence[Instance], readers: Mapping[str, DatasetReader], data_paths: Mapping[str, str]
) -> Optional[ConfigurationError]:
    """
    Why `instances` (a batch of the multitask data loader, whose tasks read with `readers` from
    `data_paths`) cannot make one batch, if it is that some lack a field that others have; else `None`.
    """
    field = field_some_instances_lack(instances)
    if field is None:
        return None
    has_field: Dict[str, List[bool]] = defaultdict(list)
    for instance in instances:
        has_field[instance["task"].metadata].append(field in instance.fields)  # type: ignore[attr-defined]
    mixed = [task for task, has in has_field.items() if len(set(has)) == 2]
    if not mixed:
        with_field = sorted(task for task, has in has_field.items() if has[0])
        without = sorted(task for task, has in has_field.items() if not has[0])
        return ConfigurationError(
            f"A batch mixes tasks whose instances have different fields: those of task(s) {with_field} have "
            f"the field '{field}', those of task(s) {without} do not, and one batch holds instances with the "
            "same fields only. Batch each task on its own (the 'homogeneous_roundrobin' scheduler), or give "
            "the tasks the same fields."
        )
    task = mixed[0]
    path = data_paths[task]
    with_number, without_number = first_with_and_without(readers[task].read(path), field)
    return ConfigurationError(
        f"Task '{task}' has instances with the field '{field}' and instances without it, and one batch "
        f"holds instances with the same fields only: in {path}, {_instance_number(with_number)} has "
        f"'{field}' and {_instance_number(without_number)} lacks it (counting the instances the reader "
        "makes of the file, from 1: their line numbers where it makes one instance a line). Give the field "
        "on every line of the task's data, or split the task in two, one with the field and one without."
    )
