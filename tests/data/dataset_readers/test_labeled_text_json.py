import json

import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader
from allennlp.data.fields import LabelField, TensorField, TextField

from allennlp_multitask.data import LabeledTextJsonReader


def write_lines(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


def test_fields_are_named_after_the_keys_and_labels_use_their_namespace(tmp_path):
    reader = DatasetReader.from_params(
        Params({"type": "labeled_text_json", "text_key": "question", "label_key": "topic", "label_namespace": "topics"})
    )
    assert isinstance(reader, LabeledTextJsonReader)
    labeled_path = write_lines(tmp_path / "labeled.jsonl", [{"question": "what is it ?", "topic": "sports"}])
    (labeled,) = reader.read(labeled_path)
    assert set(labeled.fields) == {"question", "topic"}
    assert isinstance(labeled["question"], TextField)
    assert [token.text for token in labeled["question"].tokens] == ["what", "is", "it", "?"]
    assert isinstance(labeled["topic"], LabelField) and labeled["topic"]._label_namespace == "topics"
    (unlabeled,) = reader.read(write_lines(tmp_path / "unlabeled.jsonl", [{"question": "why"}]))
    assert set(unlabeled.fields) == {"question"}


def test_a_line_without_the_text_key_names_the_line_and_its_keys(tmp_path):
    reader = LabeledTextJsonReader(text_key="sentence")
    path = write_lines(tmp_path / "data.jsonl", [{"sentence": "ok"}, {"text": "oops", "label": "x"}])
    with pytest.raises(ValueError, match=r"data.jsonl:2 has no 'sentence' \(text_key\); it has \['label', 'text'\]"):
        list(reader.read(path))


def test_text_and_label_keys_must_differ():
    with pytest.raises(ConfigurationError, match="different text_key and label_key"):
        LabeledTextJsonReader(text_key="x", label_key="x")


def test_max_instances_from_config_still_applies(tmp_path):
    reader = DatasetReader.from_params(Params({"type": "labeled_text_json", "max_instances": 1}))
    path = write_lines(tmp_path / "data.jsonl", [{"text": "a"}, {"text": "b"}])
    assert len(list(reader.read(path))) == 1


def sentiment_reader() -> LabeledTextJsonReader:
    return LabeledTextJsonReader(text_key="sentence", label_key="sentiment")


@pytest.mark.parametrize(
    "lines, message",
    [
        pytest.param(
            ['{"sentence": "good", "sentiment": "pos"}', '{"sentence": "bad"}'],
            r"data.jsonl:2 has no 'sentiment' \(label_key\), but .*data.jsonl:1 has one: label every line",
            id="a line without its label",
        ),
        pytest.param(
            ['{"sentence": "good"}', '{"sentence": "bad", "sentiment": "neg"}'],
            r"data.jsonl:1 has no 'sentiment' \(label_key\), but .*data.jsonl:2 has one",
            id="the first line without its label",
        ),
        pytest.param(
            ['{"sentence": "good", "sentimnet": "pos"}'],
            r"data.jsonl:1 has no 'sentiment' \(label_key\) but has 'sentimnet': is label_key misspelled\?",
            id="misspelled label key",
        ),
        pytest.param(
            ['{"sentence": "good", "sentiment": "pos"}', "", '{"sentence": "bad", "sentiment": "neg",}'],
            # Python's wording of the JSON error and its column vary between versions.
            r"data.jsonl:3 is not JSON \([^)]+, column \d+\): '\{\"sentence\": \"bad\", \"sentiment\": \"neg\",\}'",
            id="not JSON",
        ),
        pytest.param(['["good", "pos"]'], r"data.jsonl:1 holds a JSON list, not an object", id="not an object"),
        pytest.param(
            ['{"sentence": "good", "sentiment": ["pos", "neg"]}'],
            r"data.jsonl:1: the label \('sentiment'\) must be a class name \(a string, an integer or a boolean\), "
            r"got list \['pos', 'neg'\]",
            id="list label",
        ),
        pytest.param(
            ['{"sentence": "good", "sentiment": {"value": "pos"}}'],
            r"data.jsonl:1: the label \('sentiment'\) must be a class name .*got dict",
            id="object label",
        ),
        pytest.param(
            ['{"sentence": "good", "sentiment": 0.5}'],
            r"data.jsonl:1: the label \('sentiment'\) must be a class name .*got float 0.5",
            id="float label",
        ),
        pytest.param(
            ['{"sentence": ["good", "film"], "sentiment": "pos"}'],
            r"data.jsonl:1: the text must be a string, got list \['good', 'film'\]",
            id="text not a string",
        ),
        pytest.param(
            ['{"sentence": "good", "sentiment": "pos"}', '{"sentence": "  ", "sentiment": "neg"}'],
            r"data.jsonl:2: the text \('sentence'\) is empty: '  ' has no tokens",
            id="empty text",
        ),
    ],
)
def test_bad_lines_are_named_by_file_and_line(tmp_path, lines, message):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(ValueError, match=message):
        list(sentiment_reader().read(str(path)))


@pytest.mark.parametrize("text", ["", "  "])
def test_an_empty_text_is_refused_with_a_transformers_tokenizer_too(tiny_bert_dir, text):
    tokenizer = {"type": "pretrained_transformer", "model_name": str(tiny_bert_dir)}
    reader = DatasetReader.from_params(
        Params({"type": "labeled_text_json", "text_key": "sentence", "label_key": "sentiment", "tokenizer": tokenizer})
    )
    with pytest.raises(ValueError, match=r"the text \('sentence'\) is empty"):
        reader.text_to_instance(text)


def test_a_file_without_labels_reads_for_prediction(tmp_path):
    # Keys other than the text's are ignored, unless spelled almost like label_key.
    path = write_lines(tmp_path / "data.jsonl", [{"sentence": "good", "id": 1}, {"sentence": "bad", "sentiment": None}])
    assert [set(instance.fields) for instance in sentiment_reader().read(path)] == [{"sentence"}, {"sentence"}]


def test_integer_and_boolean_labels_are_class_names(tmp_path):
    labels = [1, "1", 0, True, False, "true"]
    path = write_lines(tmp_path / "data.jsonl", [{"sentence": "w", "sentiment": label} for label in labels])
    read = [instance["sentiment"].label for instance in sentiment_reader().read(path)]
    assert read == ["1", "1", "0", "true", "false", "true"]


def test_numeric_labels_read_as_float_tensors(tmp_path):
    reader = DatasetReader.from_params(
        Params({"type": "labeled_text_json", "text_key": "sentence", "label_key": "score", "numeric_labels": True})
    )
    path = write_lines(tmp_path / "data.jsonl", [{"sentence": "fine", "score": 4.5}, {"sentence": "bad", "score": 1}])
    scores = [instance["score"] for instance in reader.read(path)]
    assert all(isinstance(score, TensorField) for score in scores)
    assert [score.tensor.item() for score in scores] == [4.5, 1.0]


@pytest.mark.parametrize("score", ["high", True, [1.0]])
def test_numeric_labels_refuse_what_is_not_a_number(tmp_path, score):
    reader = LabeledTextJsonReader(text_key="sentence", label_key="score", numeric_labels=True)
    path = write_lines(tmp_path / "data.jsonl", [{"sentence": "fine", "score": score}])
    with pytest.raises(ValueError, match=r"data.jsonl:1: the label \('score'\) must be a number \(numeric_labels\)"):
        list(reader.read(path))
