"""
Partial labels in the model: a head runs on the instances with its label with the label (loss and metrics)
and on the others without (predictions only), as the bundled readers mark them (`absent_labels`).
"""

from typing import Any, Dict, List

import pytest
import torch
from allennlp.data import Instance
from allennlp.data.fields import MetadataField

from allennlp_multitask.data.absent_labels import ABSENT_LABELS
from allennlp_multitask.data.dataset_readers import ConllTagsReader
from tests.models.conll_example import conll_model, read_instances, tensor_batch

# The rows (of the first eight sentences of the example) whose NER tags are left out.
UNLABELLED = [1, 2, 5]


def sentences(unlabelled: List[int], count: int = 8) -> List[Instance]:
    """The example's first `count` sentences as `conll_tags` makes them, without NER tags on rows `unlabelled`."""
    reader = ConllTagsReader(tag_columns={"pos_tags": 1, "ner_tags": 3})
    instances = []
    for row, instance in enumerate(read_instances("conll")[:count]):
        tags = {name: list(instance[name].labels) for name in ("pos_tags", "ner_tags")}  # type: ignore[attr-defined]
        if row in unlabelled:
            tags["ner_tags"] = None  # type: ignore[assignment]
        sentence = reader.text_to_instance(list(instance["tokens"].tokens), **tags)  # type: ignore[attr-defined]
        sentence.add_field("task", MetadataField("conll"))
        reader.apply_token_indexers(sentence)
        instances.append(sentence)
    return instances


def run(instances: List[Instance], seed: int = 0) -> Dict[str, Any]:
    """A fresh model of the example (the same weights for the same `seed`): its outputs, metrics and NER gradients."""
    torch.manual_seed(seed)
    model = conll_model()
    outputs = model(**tensor_batch(model, instances))
    outputs["loss"].backward()
    ner = model._heads["ner"]
    return {
        "outputs": outputs,
        "metrics": model.get_metrics(reset=True),
        "ner_gradients": [parameter.grad for parameter in ner.parameters() if parameter.grad is not None],
    }


def test_a_heads_loss_metrics_and_gradients_are_those_of_its_labelled_instances_alone() -> None:
    partial = run(sentences(UNLABELLED))
    labelled_only = run([s for row, s in enumerate(sentences([])) if row not in UNLABELLED])
    every_label = run(sentences([]))
    assert torch.allclose(partial["outputs"]["ner_loss"], labelled_only["outputs"]["ner_loss"], atol=1e-6)
    assert torch.allclose(partial["outputs"]["pos_loss"], every_label["outputs"]["pos_loss"], atol=1e-6)
    assert len(partial["ner_gradients"]) == len(labelled_only["ner_gradients"]) > 0
    for mine, theirs in zip(partial["ner_gradients"], labelled_only["ner_gradients"]):
        assert torch.allclose(mine, theirs, atol=1e-6)
    for key in ("ner_accuracy", "ner_f1-measure-overall"):
        assert partial["metrics"][key] == pytest.approx(labelled_only["metrics"][key])
    assert partial["metrics"]["pos_accuracy"] == pytest.approx(every_label["metrics"]["pos_accuracy"])


def test_every_instance_keeps_its_predictions_in_batch_order() -> None:
    partial = run(sentences(UNLABELLED))["outputs"]
    every_label = run(sentences([]))["outputs"]
    for key in ("ner_logits", "ner_predicted_tags", "ner_mask", "pos_logits"):
        assert partial[key].shape == every_label[key].shape
        assert torch.allclose(partial[key].float(), every_label[key].float(), atol=1e-6)


def test_a_batch_without_a_heads_label_adds_no_loss_for_it_and_leaves_its_metrics() -> None:
    result = run(sentences(list(range(4)), count=4))
    assert "ner_loss" not in result["outputs"]
    assert torch.equal(result["outputs"]["loss"], result["outputs"]["pos_loss"])
    assert "ner_accuracy" not in result["metrics"]
    assert result["outputs"]["ner_predicted_tags"].size(0) == 4


def test_fully_labelled_batches_are_unchanged_bit_for_bit() -> None:
    marked = sentences([])
    unmarked = []
    for instance in sentences([]):
        del instance.fields[ABSENT_LABELS]
        unmarked.append(instance)
    with_marks, without = run(marked), run(unmarked)
    assert with_marks["outputs"].keys() == without["outputs"].keys()
    for key, value in without["outputs"].items():
        assert torch.equal(with_marks["outputs"][key], value), key
    assert with_marks["metrics"] == without["metrics"]
    assert len(with_marks["ner_gradients"]) == len(without["ner_gradients"]) > 0
    for mine, theirs in zip(with_marks["ner_gradients"], without["ner_gradients"]):
        assert torch.equal(mine, theirs)
