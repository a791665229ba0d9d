"""
Mixed precision with `allennlp train`, `evaluate` and `predict`: bfloat16 on the CPU (trained, evaluated,
predicted and resumed exactly, with Jacobian descent at both levels and with LoRA adapters under gradient
checkpointing), and float16
with its gradient scaler where a CUDA device is present.
"""

import json
from pathlib import Path
from typing import Any, Dict, Optional

import numpy
import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.models.archival import load_archive

from tests.commands.peft_runs import peft_config
from tests.commands.peft_runs import train as train_config
from tests.commands.runs import (
    DATA,
    VALIDATION_FILES,
    SimulatedCrash,
    allennlp,
    assert_same_weights,
    final_metrics,
    train,
)

BF16 = {"trainer.use_amp": True, "trainer.amp_dtype": "bfloat16"}
FP16 = {"trainer.use_amp": True, "trainer.cuda_device": 0}
INFERENCE_BF16 = json.dumps({"model.inference_amp_dtype": "bfloat16"})
EPOCHS = 2
# Steps of two batches, one per task: Jacobian descent has two rows to aggregate at each.
JACOBIAN_DESCENT = {"trainer.num_gradient_accumulation_steps": 2}
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 mixed precision needs CUDA")


def crashed_and_resumed_equals_uninterrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Path:
    """Trains the example with `overrides` straight through and with a crash and `-r`: both end the same."""
    uninterrupted, resumed = tmp_path / "uninterrupted", tmp_path / "resumed"
    train(uninterrupted, monkeypatch, epochs=EPOCHS, overrides=overrides)
    with pytest.raises(SimulatedCrash):
        train(resumed, monkeypatch, crash_in_epoch=1, epochs=EPOCHS, overrides=overrides)
    train(resumed, monkeypatch, "-r", crash_in_epoch=1, epochs=EPOCHS, overrides=overrides)
    assert final_metrics(resumed) == final_metrics(uninterrupted)
    assert_same_weights(resumed, uninterrupted, EPOCHS)
    return uninterrupted


def evaluate(archive: Path, output: Path, monkeypatch: pytest.MonkeyPatch, *options: str) -> Dict[str, Any]:
    data = json.dumps(VALIDATION_FILES)
    allennlp("evaluate", str(archive), data, "--output-file", str(output), *options, monkeypatch=monkeypatch)
    return json.loads(output.read_text())


@pytest.mark.slow
def test_bfloat16_on_the_cpu_trains_resumes_exactly_evaluates_and_predicts_in_float32(
    in_repo_root, tmp_path, monkeypatch
):
    run = crashed_and_resumed_equals_uninterrupted(tmp_path, monkeypatch, **BF16)
    train(tmp_path / "float32", monkeypatch, epochs=EPOCHS)
    assert final_metrics(run)["training_loss"] != final_metrics(tmp_path / "float32")["training_loss"]

    archive = run / "model.tar.gz"
    in_float32 = evaluate(archive, tmp_path / "float32.json", monkeypatch)
    in_bfloat16 = evaluate(archive, tmp_path / "bfloat16.json", monkeypatch, "-o", INFERENCE_BF16)
    assert in_bfloat16["loss"] != in_float32["loss"]
    assert in_bfloat16["loss"] == pytest.approx(in_float32["loss"], rel=0.05)

    reader = load_archive(str(archive)).dataset_reader.readers["sentiment"]  # type: ignore[attr-defined]
    instances = list(reader.read(DATA + "sentiment_validation.jsonl"))[:4]
    expected = load_archive(str(archive)).model.eval().forward_on_instances(instances)
    outputs = load_archive(str(archive), overrides=INFERENCE_BF16).model.eval().forward_on_instances(instances)
    for output, reference in zip(outputs, expected):
        probabilities = output["sentiment_probs"]
        assert probabilities.dtype == numpy.float32
        numpy.testing.assert_allclose(probabilities, reference["sentiment_probs"], atol=0.02)
    assert any(
        not numpy.array_equal(output["sentiment_probs"], reference["sentiment_probs"])
        for output, reference in zip(outputs, expected)
    )


@pytest.mark.slow
@pytest.mark.parametrize("level", ["parameters", "representation"])
def test_jacobian_descent_in_bfloat16_resumes_exactly(level, in_repo_root, tmp_path, monkeypatch):
    callbacks = [{"type": "jacobian_descent", "level": level}]
    run = crashed_and_resumed_equals_uninterrupted(
        tmp_path, monkeypatch, **BF16, **JACOBIAN_DESCENT, **{"trainer.callbacks": callbacks}
    )
    prefix = "representation_" if level == "representation" else ""
    assert 0 <= final_metrics(run)[f"training_{prefix}gradient_conflict_share"] <= 1


@pytest.mark.slow
def test_lora_adapters_with_jacobian_descent_and_gradient_checkpointing_train_in_bfloat16_resume_exactly_and_predict(
    tiny_bert_dir, in_repo_root, tmp_path, monkeypatch
):
    def config(crash_in_epoch: Optional[int]) -> Dict[str, Any]:
        config = peft_config(tiny_bert_dir, gradient_checkpointing=True)
        config["trainer"].update(
            num_epochs=EPOCHS,
            use_amp=True,
            amp_dtype="bfloat16",
            num_gradient_accumulation_steps=2,
            callbacks=[{"type": "jacobian_descent"}, {"type": "test_crash_once", "crash_in_epoch": crash_in_epoch}],
        )
        return config

    uninterrupted, resumed = tmp_path / "uninterrupted", tmp_path / "resumed"
    archive = train_config(config(None), uninterrupted, monkeypatch)
    with pytest.raises(SimulatedCrash):
        train_config(config(1), resumed, monkeypatch)
    train_config(config(1), resumed, monkeypatch, "-r")
    assert final_metrics(resumed) == final_metrics(uninterrupted)
    assert_same_weights(resumed, uninterrupted, EPOCHS)

    output = tmp_path / "predictions.jsonl"
    predict_options = ("--output-file", str(output), "--silent", "-o", INFERENCE_BF16)
    allennlp("predict", str(archive), DATA + "predict_inputs.jsonl", *predict_options, monkeypatch=monkeypatch)
    predictions = [json.loads(line) for line in output.read_text().splitlines()]
    assert predictions and all(
        prediction.get("sentiment_label") or prediction.get("topic_label") for prediction in predictions
    )


def test_an_unknown_amp_dtype_fails_at_construction(in_repo_root, tmp_path, monkeypatch):
    with pytest.raises(
        ConfigurationError, match=r"trainer's amp_dtype must be one of \['float16', 'bfloat16'\], got 'half'"
    ):
        train(tmp_path / "run", monkeypatch, overrides={**BF16, "trainer.amp_dtype": "half"})


def test_float16_on_the_cpu_fails_at_construction_naming_bfloat16(in_repo_root, tmp_path, monkeypatch):
    with pytest.raises(ConfigurationError, match=r'float16 mixed precision needs a CUDA device.*"bfloat16"'):
        train(tmp_path / "run", monkeypatch, overrides={"trainer.use_amp": True, "trainer.cuda_device": -1})


@pytest.mark.slow
@needs_cuda
@pytest.mark.parametrize("level", [None, "parameters", "representation"])
def test_float16_with_its_scaler_resumes_exactly_with_the_scalers_state(level, in_repo_root, tmp_path, monkeypatch):
    callbacks = [] if level is None else [{"type": "jacobian_descent", "level": level}]
    overrides = {**FP16, **JACOBIAN_DESCENT, "trainer.callbacks": callbacks}
    run = crashed_and_resumed_equals_uninterrupted(tmp_path, monkeypatch, **overrides)
    training_state = torch.load(run / f"training_state_e{EPOCHS}_b0.th", map_location="cpu", weights_only=False)
    assert training_state["grad_scaler"]["scale"] > 0
