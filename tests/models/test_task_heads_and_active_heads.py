"""
One instance feeding several heads (`task_heads`), and heads switched off and on (`active_heads`), on
the bundled CoNLL example: each sentence feeds a `pos` and an `ner` tagger, and a separate `topic`
task goes to the classifier of its name.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.models import Model
from allennlp.models.archival import load_archive

from tests.models.conll_example import conll_model, read_instances, tensor_batch

TAGGERS = {"pos": "pos_tags", "ner": "ner_tags"}  # head -> the field holding its gold tags


@pytest.fixture(scope="module")
def trained_example(conll_example_run: Path) -> tuple[Model, Path]:
    """The example, trained with AllenNLP's own training code, and its serialization directory."""
    return load_archive(str(conll_example_run / "model.tar.gz")).model, conll_example_run


def test_example_trains_both_taggers_from_the_same_sentences(trained_example):
    model, serialization_dir = trained_example
    first_epoch = json.loads((serialization_dir / "metrics_epoch_0.json").read_text())
    final = json.loads((serialization_dir / "metrics.json").read_text())
    for head in TAGGERS:
        assert final[f"training_{head}_accuracy"] > first_epoch[f"training_{head}_accuracy"] + 0.3, head
    assert final["best_validation_ner_f1-measure-overall"] > 0.8
    assert final["best_validation_topic_accuracy"] > 0.8
    # Every validation sentence gets both heads' tags, one per token, and both beat the majority tag.
    sentences = read_instances("conll", "validation")
    outputs = model.forward_on_instances(sentences)
    for head, field in TAGGERS.items():
        gold = [tag for sentence in sentences for tag in sentence[field].labels]
        predicted = [tag for output in outputs for tag in output[f"{head}_tags"]]
        assert [len(output[f"{head}_tags"]) for output in outputs] == [len(s["tokens"]) for s in sentences]
        majority_accuracy = Counter(gold).most_common(1)[0][1] / len(gold)
        accuracy = sum(p == g for p, g in zip(predicted, gold)) / len(gold)
        assert accuracy > majority_accuracy + 0.2, (head, accuracy, majority_accuracy)
    assert all("topic_label" not in output for output in outputs)


def heads_with_a_loss(outputs: dict) -> set[str]:
    return {key[: -len("_loss")] for key in outputs if key.endswith("_loss")}


def test_each_task_reaches_its_heads_and_only_them():
    model = conll_model()
    conll_outputs = model(**tensor_batch(model, read_instances("conll")[:4]))
    topic_outputs = model(**tensor_batch(model, read_instances("topic")[:4]))
    assert heads_with_a_loss(conll_outputs) == {"pos", "ner"}
    assert heads_with_a_loss(topic_outputs) == {"topic"}
    assert torch.allclose(conll_outputs["loss"], conll_outputs["pos_loss"] + conll_outputs["ner_loss"])


@pytest.mark.parametrize(
    "task_heads, message",
    [
        (
            {"conll": ["pos", "chunk"]},
            r"task_heads\['conll'\] names \['chunk'\], which are not heads; heads: \['ner', 'pos', 'topic'\]",
        ),
        ({"conll": []}, r"task_heads\['conll'\] must be a non-empty list"),
    ],
)
def test_task_heads_naming_no_head_fail_at_construction(task_heads, message):
    with pytest.raises(ConfigurationError, match=message):
        conll_model({"model.task_heads": task_heads})


def test_inactive_auxiliary_head_is_skipped_until_reenabled():
    torch.manual_seed(0)
    model = conll_model()
    batch = tensor_batch(model, read_instances("conll")[:8])
    both = model(**batch)
    model.get_metrics(reset=True)

    model.set_active_heads(["pos", "topic"])
    assert model.active_heads == ["pos", "topic"]
    pos_only = model(**batch)
    assert not [key for key in pos_only if key.startswith("ner_")]
    assert torch.allclose(pos_only["loss"], both["pos_loss"])  # No loss contribution from "ner".
    pos_only["loss"].backward()
    assert all(parameter.grad is None for parameter in model._heads["ner"].parameters())
    assert model._heads["pos"]._projection.weight.grad is not None
    metrics = model.get_metrics(reset=True)
    assert "pos_accuracy" in metrics and not [key for key in metrics if key.startswith("ner_")]

    model.set_active_heads(["pos", "ner", "topic"])
    again = model(**batch)
    assert torch.allclose(again["ner_loss"], both["ner_loss"])
    assert torch.allclose(again["loss"], both["loss"])
    assert {"pos_accuracy", "ner_accuracy", "ner_f1-measure-overall"} <= set(model.get_metrics())


def test_active_heads_come_from_the_configuration():
    model = conll_model({"model.active_heads": ["topic", "pos"]})
    assert model.active_heads == ["pos", "topic"]  # In the model's head order.
    outputs = model(**tensor_batch(model, read_instances("conll")[:4]))
    assert "pos_loss" in outputs and "ner_loss" not in outputs
    with pytest.raises(ConfigurationError, match=r"active_heads names \['chunk'\], which are not heads"):
        conll_model({"model.active_heads": ["pos", "chunk"]})
