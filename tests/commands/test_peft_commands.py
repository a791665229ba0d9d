"""
`allennlp train`, `evaluate` and `predict` of a multitask config whose transformer backbone has a LoRA
block (a tiny random-init BERT loaded from a local directory), and the archive's merged and exported forms.
"""

import json
import tarfile
from pathlib import Path
from typing import Any, Dict

import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.models.archival import load_archive
from transformers import BertModel

from tests.commands.peft_runs import TASKS, VALIDATION_FILES, peft_config, train
from tests.commands.runs import DATA, SimulatedCrash, allennlp, predict


def evaluate(archive: Path, output: Path, monkeypatch: pytest.MonkeyPatch) -> Dict[str, Any]:
    files = json.dumps(VALIDATION_FILES)
    allennlp("evaluate", str(archive), files, "--output-file", str(output), monkeypatch=monkeypatch)
    return json.loads(output.read_text())


@pytest.fixture(scope="module")
def shared_lora_run(tiny_bert_dir, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("shared_lora") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(Path(__file__).resolve().parents[2])
        train(peft_config(tiny_bert_dir), run, monkeypatch)
    return run


def test_training_changes_only_adapters_and_heads_and_the_optimizer_holds_only_theirs(shared_lora_run, tiny_bert_dir):
    base = BertModel.from_pretrained(str(tiny_bert_dir)).state_dict()
    trained = torch.load(shared_lora_run / "best.th", map_location="cpu")
    prefix = "_backbone._embedder.transformer_model.base_model.model."
    adapters = [key for key in trained if ".lora_" in key]
    assert adapters and all(".default." in key for key in adapters)
    # The transformer's weights, by their names in BERT (PEFT keeps an adapted layer's as its `base_layer`).
    frozen = {
        key[len(prefix) :].replace(".base_layer.", "."): value
        for key, value in trained.items()
        if key.startswith(prefix) and key not in adapters
    }
    assert frozen.keys() == base.keys()
    assert all(torch.equal(frozen[key], base[key]) for key in base)
    # LoRA's B matrices start at zero: trained, they are not.
    assert all(trained[key].abs().sum() > 0 for key in adapters if ".lora_B." in key)
    model = load_archive(str(shared_lora_run / "model.tar.gz")).model
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert all(".lora_" in name or name.startswith("_heads.") for name in trainable)
    training_state = torch.load(sorted(shared_lora_run.glob("training_state_e*.th"))[-1], map_location="cpu")
    assert len(training_state["optimizer"]["state"]) == len(trainable)


def test_the_archive_evaluates_and_predicts_with_the_multitask_predictor(
    shared_lora_run, in_repo_root, tmp_path, monkeypatch
):
    archive = shared_lora_run / "model.tar.gz"
    evaluation = evaluate(archive, tmp_path / "evaluation.json", monkeypatch)
    trained = json.loads((shared_lora_run / "metrics.json").read_text())
    for task in TASKS:
        assert evaluation[f"{task}_accuracy"] == trained[f"best_validation_{task}_accuracy"]
    inputs = DATA + "predict_inputs.jsonl"
    predictions = predict(archive, inputs, tmp_path / "predictions.jsonl", monkeypatch=monkeypatch)
    tasks = [json.loads(line)["task"] for line in Path(DATA, "predict_inputs.jsonl").read_text().splitlines()]
    assert all(f"{task}_label" in prediction for task, prediction in zip(tasks, predictions, strict=True))


def test_the_merged_archive_predicts_what_the_adapters_do(shared_lora_run, in_repo_root, tmp_path, monkeypatch):
    merged = tmp_path / "merged.tar.gz"
    allennlp("merge-adapters", str(shared_lora_run / "model.tar.gz"), str(merged), monkeypatch=monkeypatch)
    with tarfile.open(merged) as contents:
        config = json.loads(contents.extractfile("config.json").read())
    assert "peft" not in config["model"]["backbone"]
    assert not any(".lora_" in key for key in load_archive(str(merged)).model.state_dict())
    inputs = DATA + "predict_inputs.jsonl"
    adapted = predict(shared_lora_run / "model.tar.gz", inputs, tmp_path / "adapted.jsonl", monkeypatch=monkeypatch)
    folded = predict(merged, inputs, tmp_path / "merged.jsonl", monkeypatch=monkeypatch)
    for expected, actual in zip(adapted, folded, strict=True):
        for key in expected:
            if key.endswith("_probs"):
                torch.testing.assert_close(torch.tensor(actual[key]), torch.tensor(expected[key]))
            elif key.endswith("_label"):
                assert actual[key] == expected[key]


def test_exported_adapters_load_with_peft_outside_allennlp(shared_lora_run, tiny_bert_dir, tmp_path, monkeypatch):
    from peft import PeftModel

    allennlp("export-adapters", str(shared_lora_run / "model.tar.gz"), str(tmp_path), monkeypatch=monkeypatch)
    folder = tmp_path / "_backbone._embedder.transformer_model"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {path.name for path in folder.iterdir()}
    loaded = PeftModel.from_pretrained(BertModel.from_pretrained(str(tiny_bert_dir)), str(folder)).eval()
    transformer = load_archive(str(shared_lora_run / "model.tar.gz")).model.backbone._embedder.transformer_model.eval()
    token_ids = torch.tensor([[2, 5, 7, 9, 3]])
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(input_ids=token_ids).last_hidden_state, transformer(input_ids=token_ids).last_hidden_state
        )


@pytest.mark.slow  # trains, evaluates, merges, then evaluates and predicts the merged archive
def test_per_task_adapters_train_evaluate_and_merge_for_one_task(tiny_bert_dir, in_repo_root, tmp_path, monkeypatch):
    task_adapters = {"sentiment": ["shared", "sentiment"], "topic": ["shared", "topic"]}
    config = peft_config(tiny_bert_dir, task_adapters=task_adapters)
    config["trainer"]["num_epochs"] = 1
    archive = train(config, tmp_path / "run", monkeypatch)
    model = load_archive(str(archive)).model
    assert {name.split(".lora_")[1].split(".")[1] for name, _ in model.named_parameters() if ".lora_" in name} == {
        "shared",
        "sentiment",
        "topic",
    }
    evaluation = evaluate(archive, tmp_path / "evaluation.json", monkeypatch)
    assert {"sentiment_accuracy", "topic_accuracy"} <= evaluation.keys()
    with pytest.raises(ConfigurationError, match=r"folds in those of one task, one of \['sentiment', 'topic'\]"):
        allennlp("merge-adapters", str(archive), str(tmp_path / "merged.tar.gz"), monkeypatch=monkeypatch)
    merged = tmp_path / "merged_sentiment.tar.gz"
    allennlp("merge-adapters", str(archive), str(merged), "--task", "sentiment", monkeypatch=monkeypatch)
    sentiment_inputs = tmp_path / "sentiment_inputs.jsonl"
    sentiment_inputs.write_text('{"task": "sentiment", "sentence": "the film was great"}\n')
    adapted = predict(archive, str(sentiment_inputs), tmp_path / "adapted.jsonl", monkeypatch=monkeypatch)
    folded = predict(merged, str(sentiment_inputs), tmp_path / "folded.jsonl", monkeypatch=monkeypatch)
    torch.testing.assert_close(torch.tensor(folded[0]["sentiment_probs"]), torch.tensor(adapted[0]["sentiment_probs"]))


def test_a_crashed_lora_run_resumes_and_ends_as_if_never_stopped(tiny_bert_dir, in_repo_root, tmp_path, monkeypatch):
    config = peft_config(tiny_bert_dir)
    train(config, tmp_path / "uninterrupted", monkeypatch)
    config["trainer"]["callbacks"] = [{"type": "test_crash_once", "crash_in_epoch": 1}]
    with pytest.raises(SimulatedCrash):
        train(config, tmp_path / "resumed", monkeypatch)
    train(config, tmp_path / "resumed", monkeypatch, "-r")
    resumed = torch.load(tmp_path / "resumed" / "best.th", map_location="cpu")
    uninterrupted = torch.load(tmp_path / "uninterrupted" / "best.th", map_location="cpu")
    assert all(torch.equal(resumed[key], uninterrupted[key]) for key in uninterrupted)
