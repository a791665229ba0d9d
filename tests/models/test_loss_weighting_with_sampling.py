"""
The loss weightings that learn, under AllenNLP's trainer with temperature task sampling and gradient
accumulation: steps whose batches lack some heads, several batches per optimizer step.
"""

import json
import math

import pytest
import torch

from tests.commands.runs import allennlp, final_metrics
from tests.models.conll_example import CONLL_CONFIG, conll_model
from tests.models.test_loss_weighting_distributed import WEIGHTINGS

HEADS = ("pos", "ner", "topic")


@pytest.mark.slow
@pytest.mark.once  # alike on every stack, and long
@pytest.mark.parametrize("name", ["famo", "uw", "imtl_l", "uncertainty", "dwa", "gradnorm"])
def test_a_learning_weighting_trains_with_task_sampling_and_gradient_accumulation(
    name, in_repo_root, tmp_path, monkeypatch
):
    overrides = {
        "model.loss_weighting": WEIGHTINGS[name],
        "data_loader.sampler": {"type": "temperature", "temperature": 2.0},
        "data_loader.instances_per_epoch": 64,
        "trainer.num_epochs": 2,
        "trainer.num_gradient_accumulation_steps": 2,
    }
    allennlp("train", str(CONLL_CONFIG), "-s", str(tmp_path), "-o", json.dumps(overrides), monkeypatch=monkeypatch)
    metrics = final_metrics(tmp_path)
    assert all(math.isfinite(metrics[f"training_{head}_loss_weight"]) for head in HEADS), metrics
    state = torch.load(tmp_path / "model_state_e2_b0.th", weights_only=False)
    initial = conll_model({"model.loss_weighting": WEIGHTINGS[name]}).state_dict()
    learned = [key for key, value in initial.items() if key.startswith("_loss_weighting.") and key in state]
    assert any(not torch.equal(state[key], initial[key]) for key in learned if torch.is_tensor(initial[key])), name
    if name == "famo":  # It learns once per optimizer step: its own Adam took as many steps as the trainer's.
        famo_steps = state["_loss_weighting._extra_state"]["optimizer"]["state"][0]["step"]
        trainer_state = torch.load(tmp_path / "training_state_e2_b0.th", weights_only=False)
        assert famo_steps == trainer_state["optimizer"]["state"][0]["step"] > 0
