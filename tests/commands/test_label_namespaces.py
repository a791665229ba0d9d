"""Two tasks' labels stay apart: namespaces as the README writes them, refusals of shared defaults, old archives."""

import json
import tarfile
from pathlib import Path
from typing import Any, Dict, Optional, Set

import pytest
from allennlp.common.checks import ConfigurationError

from tests.commands.runs import DATA, allennlp, allennlp_process, predict, read_json_lines
from tests.conftest import REPO_ROOT

TASKS = {"sentiment": ("sentence", "sentiment"), "topic": ("question", "topic")}


def labels_in(task: str) -> Set[str]:
    """The labels of a task's training data."""
    _, label_key = TASKS[task]
    return {line[label_key] for line in read_json_lines(REPO_ROOT / DATA / f"{task}_train.jsonl")}


def two_task_config(
    reader_namespaces: Optional[Dict[str, str]], head_namespaces: Optional[Dict[str, str]]
) -> Dict[str, Any]:
    """
    The README's two-task config, its elisions filled in (one epoch, a small embedder); readers and heads
    get `label_namespace` where the given dictionaries have one.
    """

    def namespace(namespaces: Optional[Dict[str, str]], task: str) -> Dict[str, str]:
        return {"label_namespace": namespaces[task]} if namespaces and task in namespaces else {}

    return {
        "dataset_reader": {
            "type": "multitask",
            "readers": {
                task: {
                    "type": "labeled_text_json",
                    "text_key": text_key,
                    "label_key": label_key,
                    **namespace(reader_namespaces, task),
                }
                for task, (text_key, label_key) in TASKS.items()
            },
        },
        "data_loader": {"type": "multitask", "scheduler": {"type": "homogeneous_roundrobin", "batch_size": 16}},
        "train_data_path": {task: str(REPO_ROOT / DATA / f"{task}_train.jsonl") for task in TASKS},
        "model": {
            "type": "multitask",
            "backbone": {
                "type": "embedder",
                "text_field_embedder": {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 8}}},
            },
            "heads": {
                task: {
                    "type": "classifier",
                    "seq2vec_encoder": {"type": "boe", "embedding_dim": 8, "averaged": True},
                    **namespace(head_namespaces, task),
                }
                for task in TASKS
            },
            "arg_name_mapping": {
                "backbone": {"sentence": "text", "question": "text"},
                **{task: {label_key: "label"} for task, (_, label_key) in TASKS.items()},
            },
            "include_backbone_outputs": False,
        },
        "trainer": {"optimizer": {"type": "adam", "lr": 0.01}, "num_epochs": 1},
    }


def write_config(directory: Path, config: Dict[str, Any]) -> str:
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


# Each task's own lines, as its training data has them, with an id.
OWN_LINES = [
    {"task": "sentiment", "id": 1, "sentence": "the hotel was truly wonderful"},
    {"task": "topic", "id": 2, "question": "what is the best oven for pasta ?"},
]


@pytest.mark.slow
@pytest.mark.subprocess
def test_tasks_written_as_the_readme_shows_train_two_label_sets_and_predict_their_own(tmp_path):
    own = {task: f"{task}_labels" for task in TASKS}
    config = write_config(tmp_path, two_task_config(own, own))
    run = tmp_path / "run"
    allennlp_process("train", config, "-s", str(run))
    vocabulary = run / "vocabulary"
    assert not (vocabulary / "labels.txt").exists()
    for task in TASKS:
        assert set((vocabulary / f"{task}_labels.txt").read_text().split()) == labels_in(task)

    inputs, predictions = tmp_path / "inputs.jsonl", tmp_path / "predictions.jsonl"
    inputs.write_text("".join(json.dumps(line) + "\n" for line in OWN_LINES))
    allennlp_process("predict", str(run / "model.tar.gz"), str(inputs), "--output-file", str(predictions), "--silent")
    outputs = read_json_lines(predictions)
    assert [(output["id"], output["task"]) for output in outputs] == [(1, "sentiment"), (2, "topic")]
    for output in outputs:
        task = output["task"]
        assert output[f"{task}_label"] in labels_in(task)
        assert len(output[f"{task}_probs"]) == len(labels_in(task))
        assert not any(key.startswith(other) for other in TASKS if other != task for key in output)


@pytest.mark.slow
@pytest.mark.parametrize("reader_namespaces", [None, {"sentiment": "labels"}], ids=["both-default", "one-default"])
def test_tasks_sharing_a_default_namespace_are_refused_naming_both_and_the_fix(
    reader_namespaces, tmp_path, monkeypatch
):
    config = write_config(tmp_path, two_task_config(reader_namespaces, None))
    with pytest.raises(ConfigurationError) as error:
        allennlp("train", config, "-s", str(tmp_path / "run"), monkeypatch=monkeypatch)
    message = str(error.value)
    assert "would train into one label set" in message
    assert "'sentiment'" in message and "'topic'" in message
    assert (
        'Give each task its own, in its reader and its head: "label_namespace": "sentiment_labels" for task '
        "'sentiment' and \"topic_labels\" for task 'topic'"
    ) in message


@pytest.mark.slow
def test_a_classifier_head_reading_another_namespace_than_its_tasks_reader_is_refused(tmp_path, monkeypatch):
    own = {task: f"{task}_labels" for task in TASKS}
    config = write_config(tmp_path, two_task_config(own, None))
    with pytest.raises(ConfigurationError) as error:
        allennlp("train", config, "-s", str(tmp_path / "run"), monkeypatch=monkeypatch)
    assert (
        "Head 'sentiment' (classifier, task 'sentiment') predicts labels of the namespace 'labels', but the "
        "reader of task 'sentiment' puts them in 'sentiment_labels'"
    ) in str(error.value)


@pytest.mark.slow
def test_a_namespace_shared_on_purpose_trains_and_archives_without_it_load_and_predict_alike(tmp_path, monkeypatch):
    shared = {task: "labels" for task in TASKS}
    config = write_config(tmp_path, two_task_config(shared, None))
    run = tmp_path / "run"
    allennlp("train", config, "-s", str(run), monkeypatch=monkeypatch)
    assert set((run / "vocabulary" / "labels.txt").read_text().split()) == labels_in("sentiment") | labels_in("topic")

    # An archive trained before the check: its config leaves label_namespace out, as AllenNLP's did.
    archive = tmp_path / "archive"
    with tarfile.open(run / "model.tar.gz") as packed:
        packed.extractall(archive, filter="data")
    written = json.loads((archive / "config.json").read_text())
    for reader in written["dataset_reader"]["readers"].values():
        del reader["label_namespace"]
    (archive / "config.json").write_text(json.dumps(written))
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps(line) + "\n" for line in OWN_LINES))
    as_trained = predict(run / "model.tar.gz", str(inputs), tmp_path / "trained.jsonl", monkeypatch=monkeypatch)
    as_before = predict(archive, str(inputs), tmp_path / "before.jsonl", monkeypatch=monkeypatch)
    assert as_before == as_trained
    assert {output[f"{output['task']}_label"] for output in as_before} <= labels_in("sentiment") | labels_in("topic")
