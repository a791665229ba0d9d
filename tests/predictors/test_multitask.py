"""The "multitask" predictor: JSON of any tasks in, one output per input out, in input order."""

import copy
from contextlib import contextmanager
from typing import Dict, Iterator, List

import numpy
import pytest
import torch
from allennlp.data.dataset_readers import Conll2003DatasetReader, MultiTaskDatasetReader
from allennlp.data.fields import MetadataField
from allennlp.models.archival import load_archive
from allennlp.models.heads import Head
from allennlp.nn import util
from allennlp.predictors import Predictor

from allennlp_multitask import MultiTaskModel
from allennlp_multitask.data import LabeledTextJsonReader
from allennlp_multitask.predictors import MultiTaskPredictor
from tests.models.small_model import DIM, backbone, classifier, small_vocab
from tests.predictors.multitask_outputs import EXAMPLE_INPUTS, EXAMPLE_LABELS, assert_same_head_outputs, head_keys


@contextmanager
def backbone_calls(model: MultiTaskModel) -> Iterator[List[int]]:
    """Counts the backbone's forward passes, each by its batch size."""
    calls: List[int] = []
    hook = model._backbone.register_forward_hook(
        lambda module, args, outputs: calls.append(len(outputs["encoded_text"]))
    )
    try:
        yield calls
    finally:
        hook.remove()


@pytest.fixture
def example_predictor(example_archive) -> MultiTaskPredictor:
    predictor = Predictor.from_archive(load_archive(str(example_archive)))
    assert type(predictor) is MultiTaskPredictor
    return predictor


def test_mixed_batch_gives_one_output_per_input_in_input_order(example_predictor):
    inputs = copy.deepcopy(EXAMPLE_INPUTS)
    with backbone_calls(example_predictor._model) as calls:
        outputs = example_predictor.predict_batch_json(inputs)
    # "sentiment" instances have a `sentence` field and "topic" ones a `question` field, which AllenNLP
    # cannot batch together: one forward pass for each kind, each the size of its group.
    assert calls == [2, 2]
    assert inputs == EXAMPLE_INPUTS
    assert [output[f"{json['task']}_label"] for json, output in zip(inputs, outputs)] == EXAMPLE_LABELS
    for json, output in zip(inputs, outputs):
        head = json["task"]
        assert head_keys(output) == {f"{head}_logits", f"{head}_probs", f"{head}_label"}
        assert_same_head_outputs(output, example_predictor.predict_json(json))


def test_instances_of_one_kind_run_the_backbone_once(example_predictor):
    with backbone_calls(example_predictor._model) as calls:
        example_predictor.predict_batch_json([EXAMPLE_INPUTS[0], EXAMPLE_INPUTS[2], EXAMPLE_INPUTS[0]])
    assert calls == [3]


def test_inactive_heads_give_no_outputs(example_predictor):
    example_predictor._model.set_active_heads(["sentiment"])
    outputs = example_predictor.predict_batch_json(EXAMPLE_INPUTS)
    assert [sorted(head_keys(output)) for output in outputs] == [
        ["sentiment_label", "sentiment_logits", "sentiment_probs"],
        [],
        ["sentiment_label", "sentiment_logits", "sentiment_probs"],
        [],
    ]
    assert outputs[0]["sentiment_label"] == "positive"


@pytest.mark.parametrize(
    "json, message",
    [
        ({"sentence": "a"}, "JSON input (key \"task\") names no task; known tasks: ['sentiment', 'topic']."),
        ({"task": "weather", "sentence": "a"}, "names the unknown task 'weather'; known tasks: ['sentiment', 'topic']"),
        (
            {"task": "topic", "utterance": "a"},
            "JSON for task 'topic' lacks the key 'sentence', which predictor 'text_classifier' (that of the "
            "task's heads) needs; got keys ['utterance']. Lines like the task's training data work too: its "
            "reader's text_key is 'question'.",
        ),
        (
            {"task": "topic", "sentence": 5},
            "JSON for task 'topic' makes no instance through predictor 'text_classifier' (that of the task's "
            'heads): the text must be a string, got int 5. (input: {"sentence": 5}).',
        ),
        ([{"task": "topic", "sentence": "a"}], 'JSON input must be an object, got list: [{"task": "topic"'),
    ],
)
def test_bad_json_is_named(example_predictor, json, message):
    with pytest.raises(ValueError) as error:
        example_predictor.predict_json(json)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "line, message",
    [
        # Python's wording of the JSON error and its column vary between versions.
        ('{"task": "topic", "sentence": "a",}\n', r"Input line is not JSON \([^)]+, column \d+\): '\{\"task\""),
        ('["topic", "a"]\n', r"Input line holds a JSON list, not an object: '\[\"topic\", \"a\"\]'"),
    ],
)
def test_input_lines_that_are_no_json_objects_are_shown(example_predictor, line, message):
    with pytest.raises(ValueError, match=message):
        example_predictor.load_line(line)


@pytest.mark.parametrize("sentence", ["", "   "])
@pytest.mark.parametrize("in_a_batch", [False, True])
def test_an_empty_sentence_is_refused_naming_its_task_and_input(example_predictor, sentence, in_a_batch):
    # Alone, AllenNLP's LSTM encoder raised IndexError; in a batch, it got a label from padding alone.
    empty = {"task": "sentiment", "sentence": sentence}
    message = r"JSON for task 'sentiment' makes no instance through its reader .*the text \('sentence'\) is empty"
    with pytest.raises(ValueError, match=message):
        if in_a_batch:
            example_predictor.predict_batch_json([EXAMPLE_INPUTS[0], empty])
        else:
            example_predictor.predict_json(empty)


def test_instance_without_task_is_named(example_predictor):
    instance = example_predictor._json_to_instance(EXAMPLE_INPUTS[0])
    del instance.fields["task"]
    with pytest.raises(ValueError, match='Instance \\(MetadataField "task"\\) names no task; known tasks'):
        example_predictor.predict_batch_instance([instance])


class MeanHead(Head):
    """A head without a default predictor: each instance's mean encoding."""

    def forward(  # type: ignore
        self, encoded_text: torch.Tensor, encoded_text_mask: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        return {"vector": util.masked_mean(encoded_text, encoded_text_mask.unsqueeze(-1), dim=1)}


@pytest.fixture
def routed_predictor() -> MultiTaskPredictor:
    """
    Three tasks with the same fields: "sentiment" (its classifier head), "review" (the classifier and
    `MeanHead`, which name no common predictor) and "pooled" (`MeanHead`, a head of another name); and
    "tagged", whose CoNLL reader takes tokens and gives other fields.
    """
    vocab = small_vocab()
    model = MultiTaskModel(
        vocab,
        backbone(vocab),
        {"sentiment": classifier(vocab), "mean": MeanHead(vocab)},
        arg_name_mapping={"backbone": {"sentence": "text", "tokens": "text"}},
        task_heads={"review": ["sentiment", "mean"], "pooled": ["mean"], "tagged": ["mean"]},
    )
    text = LabeledTextJsonReader(text_key="sentence")
    readers = {"sentiment": text, "review": text, "pooled": text, "tagged": Conll2003DatasetReader()}
    return MultiTaskPredictor(model, MultiTaskDatasetReader(readers))


def test_tasks_are_served_through_task_heads_with_their_readers(routed_predictor):
    inputs = [
        {"task": "sentiment", "sentence": "w1 w2 w3"},
        {"task": "review", "text": "w4 w5"},
        {"task": "pooled", "text": "w6 w7 w8 w9"},
        {"task": "tagged", "tokens": ["w1", "w9"]},
        {"task": "sentiment", "sentence": "w3"},
    ]
    with backbone_calls(routed_predictor._model) as calls:
        outputs = routed_predictor.predict_batch_json(inputs)
    assert calls == [4, 1]
    classified = {"sentiment_logits", "sentiment_probs", "sentiment_label"}
    assert [head_keys(output) for output in outputs] == [
        classified,
        classified | {"mean_vector"},
        {"mean_vector"},
        {"mean_vector"},
        classified,
    ]
    for json, output in zip(inputs, outputs):
        assert_same_head_outputs(output, routed_predictor.predict_json(json))
    assert numpy.shape(outputs[2]["mean_vector"]) == (DIM,)


def test_reader_keywords_are_checked(routed_predictor):
    with pytest.raises(ValueError) as error:
        routed_predictor.predict_json({"task": "pooled", "utterance": "w1"})
    message = str(error.value)
    assert "JSON for task 'pooled', whose heads name no common predictor, must hold keyword arguments" in message
    assert "LabeledTextJsonReader.text_to_instance(text" in message
    assert "got keys ['utterance']" in message
    assert "its reader's text_key is 'sentence'" in message


def test_instances_from_the_dataset_reader_keep_their_task(routed_predictor):
    instance = LabeledTextJsonReader(text_key="sentence").text_to_instance("w1 w2", "pos")
    instance.add_field("task", MetadataField("pooled"))
    (output,) = routed_predictor.predict_batch_instance([instance])
    assert head_keys(output) == {"mean_vector"}


@pytest.mark.parametrize(
    "json, message",
    [
        (
            {"task": "tagged", "tokens": "w1 w2"},
            "JSON for task 'tagged' needs a list of strings (tokens) under 'tokens', got \"w1 w2\".",
        ),
        ({"task": "tagged", "tokens": [1, 2]}, "needs a list of strings (tokens) under 'tokens', got [1, 2]."),
        (
            {"task": "tagged", "tokens": ["w1"], "ner_tags": ["O", "O"]},
            "JSON for task 'tagged' makes no instance through Conll2003DatasetReader.text_to_instance: Label "
            'length and sequence length don\'t match: 2 and 1 (input: {"tokens": ["w1"], "ner_tags"',
        ),
    ],
)
def test_json_the_reader_cannot_take_is_named(routed_predictor, json, message):
    with pytest.raises(ValueError) as error:
        routed_predictor.predict_json(json)
    assert message in str(error.value)


def test_lines_in_the_task_readers_keys_predict_as_the_head_predictors_keys(example_predictor):
    # The "topic" task trained on lines {"question": ..., "topic": ...}; AllenNLP's text_classifier
    # predictor takes {"sentence": ...}. Both give the same outputs, and a label in the line is left out.
    question = "what is the best oven for pasta ?"
    as_trained = {"task": "topic", "question": question, "topic": "sports"}
    as_classifier = {"task": "topic", "sentence": question}
    outputs = example_predictor.predict_batch_json([as_trained, as_classifier])
    assert outputs[0]["topic_label"] == "cooking"
    assert "loss" not in outputs[0]
    assert_same_head_outputs(outputs[0], outputs[1])


def test_outputs_name_their_task_and_echo_the_inputs_id(example_predictor):
    inputs = [{"id": "first", **EXAMPLE_INPUTS[0]}, EXAMPLE_INPUTS[1], {"id": 3, **EXAMPLE_INPUTS[3]}]
    outputs = example_predictor.predict_batch_json(inputs)
    assert [(output["task"], output.get("id")) for output in outputs] == [
        ("sentiment", "first"),
        ("topic", None),
        ("topic", 3),
    ]
    assert example_predictor.predict_json(inputs[0])["id"] == "first"
    (from_instance,) = example_predictor.predict_batch_instance([example_predictor._json_to_instance(inputs[1])])
    assert from_instance["task"] == "topic"
