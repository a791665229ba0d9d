import json

import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader
from allennlp.data.fields import LabelField, TextField

from allennlp_multitask.data import LabeledTextJsonReader


def write_lines(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


def test_fields_are_named_after_the_keys_and_labels_use_their_namespace(tmp_path):
    reader = DatasetReader.from_params(
        Params({"type": "labeled_text_json", "text_key": "question", "label_key": "topic", "label_namespace": "topics"})
    )
    assert isinstance(reader, LabeledTextJsonReader)
    path = write_lines(tmp_path / "data.jsonl", [{"question": "what is it ?", "topic": "sports"}, {"question": "why"}])
    labeled, unlabeled = list(reader.read(path))
    assert set(labeled.fields) == {"question", "topic"}
    assert isinstance(labeled["question"], TextField)
    assert [token.text for token in labeled["question"].tokens] == ["what", "is", "it", "?"]
    assert isinstance(labeled["topic"], LabelField) and labeled["topic"]._label_namespace == "topics"
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
