"""
Partial labels in the model: a head runs on the instances with its label with the label (loss and metrics)
and on the others without (predictions only), as the bundled readers mark them (`absent_labels`).
"""

from typing import Any, Dict, List

import pytest
import torch
from allennlp.data import Instance
from allennlp.data.fields import MetadataField
from allennlp.models.heads import ClassifierHead
from allennlp.modules.seq2vec_encoders import BagOfEmbeddingsEncoder

from allennlp_multitask import MultiTaskModel
from allennlp_multitask.data.absent_labels import ABSENT_LABELS
from allennlp_multitask.data.dataset_readers import ConllTagsReader, LabeledTextJsonReader
from allennlp_multitask.models.heads import RegressionHead
from tests.models.conll_example import conll_model, read_instances, tensor_batch
from tests.models.small_model import DIM, backbone, small_vocab

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


REVIEWS = [
    {"text": "w1 w2 w3", "sentiment": "pos", "score": 4.0},
    {"text": "w4 w5", "score": 2.0},
    {"text": "w6 w7 w8 w9", "sentiment": "neg"},
    {"text": "w2 w9", "sentiment": "neg", "score": 1.5},
    {"text": "w3", "sentiment": None, "score": None},
]


def review_run(records: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
    """A fresh stock `classifier` and our `regression` head serving one task, read with `label_keys`: the outputs."""
    reader = LabeledTextJsonReader(label_keys=["sentiment", "score"], numeric_label_keys=["score"])
    instances = []
    for record in records:
        instance = reader.text_to_instance(record["text"], **{key: record.get(key) for key in ("sentiment", "score")})
        instance.add_field("task", MetadataField("reviews"))
        reader.apply_token_indexers(instance)
        instances.append(instance)
    vocab = small_vocab()
    vocab.add_tokens_to_namespace(["neg", "pos"], "sentiment_labels")
    torch.manual_seed(0)
    model = MultiTaskModel(
        vocab,
        backbone(vocab),
        {
            "sentiment": ClassifierHead(
                vocab, BagOfEmbeddingsEncoder(DIM, averaged=True), label_namespace="sentiment_labels"
            ),
            "score": RegressionHead(vocab, BagOfEmbeddingsEncoder(DIM, averaged=True)),
        },
        task_heads={"reviews": ["sentiment", "score"]},
        arg_name_mapping={"sentiment": {"sentiment": "label"}, "score": {"score": "label"}},
    )
    return model(**tensor_batch(model, instances))


def test_the_stock_classifier_and_the_regression_head_learn_from_their_labelled_instances_only() -> None:
    partial = review_run(REVIEWS)
    for head in ("sentiment", "score"):
        labelled = review_run([record for record in REVIEWS if record.get(head) is not None])
        assert torch.allclose(partial[f"{head}_loss"], labelled[f"{head}_loss"], atol=1e-6)
    assert partial["sentiment_logits"].shape == (5, 2) and partial["score_prediction"].shape == (5,)
