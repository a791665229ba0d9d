"""
Per-task LoRA adapters with the rest: two CPU workers (gloo, AllenNLP's default DDP, no
`find_unused_parameters`), and Jacobian descent, whose shared parameters are then the adapters'.
"""

import json

import pytest
import torch

from tests.commands.peft_runs import TASKS, peft_config, train

PER_TASK = {"sentiment": ["shared", "sentiment"], "topic": ["shared", "topic"]}


def adapter_weights(run) -> dict:
    weights = torch.load(run / "best.th", map_location="cpu")
    return {key: value for key, value in weights.items() if ".lora_B." in key}


@pytest.mark.slow
@pytest.mark.distributed
def test_two_cpu_workers_train_per_task_adapters_without_unused_parameter_errors(
    tiny_bert_dir, in_repo_root, tmp_path, monkeypatch
):
    # Each batch holds one task: the other task's adapters are idle on it, on both workers.
    config = {**peft_config(tiny_bert_dir, task_adapters=PER_TASK), "distributed": {"cuda_devices": [-1, -1]}}
    config["trainer"]["num_epochs"] = 1
    train(config, tmp_path / "run", monkeypatch)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert all(f"validation_{task}_accuracy" in metrics for task in TASKS)
    weights = adapter_weights(tmp_path / "run")
    for adapter in ["shared", *TASKS]:
        assert any(f".{adapter}." in key and value.abs().sum() > 0 for key, value in weights.items()), adapter


def test_jacobian_descent_aggregates_over_the_adapters(tiny_bert_dir, in_repo_root, tmp_path, monkeypatch):
    config = peft_config(tiny_bert_dir, task_adapters=PER_TASK)
    config["trainer"].update(
        num_epochs=1,
        num_gradient_accumulation_steps=2,
        callbacks=[{"type": "jacobian_descent", "aggregator": "upgrad"}],
    )
    train(config, tmp_path / "run", monkeypatch)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # Steps of two batches, one per task: every step has two rows to aggregate.
    assert metrics["training_gradient_conflict_share"] >= 0
    assert all(value.abs().sum() > 0 for value in adapter_weights(tmp_path / "run").values())
