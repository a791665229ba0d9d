"""Bad data given to `allennlp train` and `allennlp predict` is named where it is, before any training step."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from allennlp.commands.train import train_model_from_file
from allennlp.common.checks import ConfigurationError

from tests.commands.runs import predict
from tests.conftest import EXAMPLE_CONFIG

SENTIMENT_TRAIN = "examples/data/sentiment_train.jsonl"


def train_example(run: Path, **overrides) -> None:
    train_model_from_file(str(EXAMPLE_CONFIG), str(run), overrides=json.dumps({"trainer.num_epochs": 1, **overrides}))


def test_a_training_line_without_its_label_is_named(in_repo_root, tmp_path):
    # AllenNLP failed mid-epoch: "You cannot construct a Batch with non-homogeneous Instances".
    lines = (in_repo_root / SENTIMENT_TRAIN).read_text().splitlines()
    lines[6] = json.dumps({"sentence": json.loads(lines[6])["sentence"]})
    data = tmp_path / "sentiment.jsonl"
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(data))}:7 has no 'sentiment' \(label_key\), but .*:1 has"):
        train_example(tmp_path / "run", **{"train_data_path.sentiment": str(data)})


@pytest.mark.parametrize(
    "label_key, message",
    [
        (
            "sentimnet",
            rf"{re.escape(SENTIMENT_TRAIN)}:1 has no 'sentimnet' \(label_key\) but has 'sentiment': is label_key",
        ),
        # AllenNLP's trainer said only that the outputs have no "loss" key.
        ("label", r"No head computed a loss on a training batch of task\(s\) \['sentiment'\]"),
    ],
)
def test_a_label_key_that_matches_no_key_of_the_data_is_named(in_repo_root, tmp_path, label_key, message):
    with pytest.raises(ValueError, match=message):
        train_example(tmp_path / "run", **{"dataset_reader.readers.sentiment.label_key": label_key})


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_task_whose_lines_lack_a_field_on_some_lines_is_named(in_repo_root, tmp_path):
    # AllenNLP failed mid-epoch naming neither task nor file: "You cannot construct a Batch with
    # non-homogeneous Instances. Field 'y2' present in some Instances but not others."
    lines = [{"sentence": f"sentence {index}", "y1": "a", "y2": "b"} for index in range(6)]
    del lines[3]["y2"]
    data = tmp_path / "two_labels.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    config = {
        "dataset_reader": {"type": "multitask", "readers": {"both": {"type": "test_two_label_json"}}},
        "data_loader": {"type": "multitask", "scheduler": {"type": "homogeneous_roundrobin", "batch_size": 8}},
        "train_data_path": {"both": str(data)},
        "model": {
            "type": "multitask",
            "backbone": {
                "type": "embedder",
                "text_field_embedder": {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 4}}},
            },
            "heads": {"both": {"type": "classifier", "seq2vec_encoder": {"type": "boe", "embedding_dim": 4}}},
            "arg_name_mapping": {"backbone": {"sentence": "text"}, "both": {"y1": "label"}},
        },
        "trainer": {"optimizer": "adam", "num_epochs": 1},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    train = [sys.executable, "-m", "allennlp", "train", str(tmp_path / "config.json"), "-s", str(tmp_path / "run")]
    packages = ["--include-package", "allennlp_multitask", "--include-package", "tests.commands.two_label_reader"]
    finished = subprocess.run([*train, *packages], capture_output=True, text=True)
    assert finished.returncode != 0
    message = (
        rf"Task 'both' has instances with the field 'y2' and instances without it, .*: in {re.escape(str(data))}, "
        r"instance 1 has 'y2' and instance 4 lacks it \(counting the instances the reader makes of the file, from "
        r"1: their line numbers where it makes one instance a line\)\. Give the field on every line"
    )
    assert re.search(message, finished.stderr), finished.stderr[-3000:]


def test_a_prediction_input_that_is_not_json_is_shown(example_archive, tmp_path, monkeypatch):
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"task": "topic", "sentence": "a"}\n{"task": "topic", "sentence": "b",}\n')
    shown = re.escape("""'{"task": "topic", "sentence": "b",}'""")
    with pytest.raises(ValueError, match=rf"Input line is not JSON \(.*\): {shown}"):
        predict(example_archive, str(inputs), tmp_path / "out.jsonl", monkeypatch=monkeypatch)


def test_an_unknown_multitask_head_names_the_known_tasks(example_archive, in_repo_root, tmp_path, monkeypatch):
    # AllenNLP's reader raised a bare KeyError: 'topc'.
    message = r"no task 'topc' \(--multitask-head\); known tasks: \['sentiment', 'topic'\]"
    with pytest.raises(ConfigurationError, match=message):
        predict(
            example_archive,
            "examples/data/topic_validation.jsonl",
            tmp_path / "out.jsonl",
            "--use-dataset-reader",
            "--multitask-head",
            "topc",
            monkeypatch=monkeypatch,
        )
