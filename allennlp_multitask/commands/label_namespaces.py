"""
The check that tasks trained together keep their labels apart: every task's `labeled_text_json` reader
and AllenNLP's `classifier` head default `label_namespace` to `"labels"`, so two tasks configured without
one would train into one label set, each head predicting the other task's labels too.
"""

from typing import Dict, List, Mapping

from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader
from allennlp.models import Model
from allennlp.models.heads import ClassifierHead

from allennlp_multitask.data.dataset_readers.labeled_text_json import LabeledTextJsonReader
from allennlp_multitask.models.multitask import MultiTaskModel


def _class_label_readers(readers: Mapping[str, DatasetReader]) -> Dict[str, LabeledTextJsonReader]:
    """
    The tasks' `labeled_text_json` readers that put class labels in one namespace, by task (with
    `label_keys`, each label has the namespace `{key}_labels`).
    """
    return {
        task: reader
        for task, reader in readers.items()
        if isinstance(reader, LabeledTextJsonReader) and not reader.numeric_labels and reader.label_keys is None
    }


def check_separate_label_namespaces(readers: Mapping[str, DatasetReader]) -> None:
    """
    Raises `ConfigurationError` naming two tasks whose readers share a label namespace that at least one
    of them leaves at its default: sharing one is allowed only where every task's reader names it.
    """
    class_label_readers = _class_label_readers(readers)
    tasks_of_namespace: Dict[str, List[str]] = {}
    for task, reader in class_label_readers.items():
        tasks_of_namespace.setdefault(reader.label_namespace, []).append(task)
    for namespace, tasks in tasks_of_namespace.items():
        defaulted = [task for task in tasks if not class_label_readers[task].label_namespace_given]
        if len(tasks) > 1 and defaulted:
            other = next(task for task in tasks if task != defaulted[0])
            first, second = [task for task in tasks if task in (defaulted[0], other)]
            raise ConfigurationError(
                f"Tasks '{first}' and '{second}' would train into one label set: their readers put labels in "
                f"the namespace '{namespace}' (label_namespace left at its default in task '{defaulted[0]}'), so "
                f"vocabulary/{namespace}.txt would hold both tasks' labels and each head would predict the "
                "other task's labels too. Give each task its own, in its reader and its head: "
                f'"label_namespace": "{first}_labels" for task \'{first}\' and "{second}_labels" for task '
                f'\'{second}\'; or, to share one label set on purpose, write "label_namespace": "{namespace}" '
                "in the reader of every task that shares it."
            )


def check_heads_read_their_tasks_labels(readers: Mapping[str, DatasetReader], model: Model) -> None:
    """
    Raises `ConfigurationError` for a `classifier` head of a multitask model whose `label_namespace` is not
    the one its task's `labeled_text_json` reader puts the labels in (a head left at `"labels"` after its
    reader got its own namespace would have no labels to predict).
    """
    if not isinstance(model, MultiTaskModel):
        return
    for task, reader in _class_label_readers(readers).items():
        for name in model.task_heads.get(task, []):
            head = model._heads[name]
            if isinstance(head, ClassifierHead) and head._label_namespace != reader.label_namespace:
                raise ConfigurationError(
                    f"Head '{name}' (classifier, task '{task}') predicts labels of the namespace "
                    f"'{head._label_namespace}', but the reader of task '{task}' puts them in "
                    f'\'{reader.label_namespace}\': give the head "label_namespace": "{reader.label_namespace}".'
                )
