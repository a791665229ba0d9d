"""`torch.load` loads tensors and plain data only: a file holding anything else is refused, naming it."""

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import torch

from allennlp_multitask.common.weights_only_load import UnsafeCheckpointError
from tests.commands.runs import DATA, allennlp
from tests.common.archives import copy_archive
from tests.conftest import EXAMPLE_CONFIG


class Payload:
    """Unpickled, creates the directory `marker`: proof that loading ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (str(self.marker),)


@pytest.fixture(params=["torch default", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"])
def environment(request, monkeypatch):
    """PyTorch's default, and the environment variable that turns it to `weights_only=False`."""
    if request.param != "torch default":
        monkeypatch.setenv(request.param, "1")


def assert_refused(refusal: pytest.ExceptionInfo, file_name: str) -> None:
    message = str(refusal.value)
    assert file_name in message and "holds something other than tensors and plain data (os.makedirs)" in message
    assert "weights_only" not in message


def test_a_file_holding_code_is_refused_naming_it(environment, tmp_path):
    checkpoint = tmp_path / "weights.th"
    torch.save({"weight": torch.ones(2), "payload": Payload(tmp_path / "ran")}, checkpoint)
    with pytest.raises(UnsafeCheckpointError) as refusal:
        torch.load(checkpoint, map_location="cpu")
    assert_refused(refusal, str(checkpoint))
    assert not (tmp_path / "ran").exists()


def test_an_archive_whose_weights_hold_code_is_refused_by_predict(
    environment, example_archive, in_repo_root, tmp_path, monkeypatch
):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(example_archive) as genuine:
        weights = torch.load(genuine.extractfile("weights.th"))
    weights["payload"] = Payload(tmp_path / "ran")
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    copy_archive(example_archive, archive, {"weights.th": buffer.getvalue()})
    with pytest.raises(UnsafeCheckpointError) as refusal:
        allennlp("predict", str(archive), DATA + "predict_inputs.jsonl", "--silent", monkeypatch=monkeypatch)
    assert_refused(refusal, "weights.th")
    assert not (tmp_path / "ran").exists()


def test_a_runs_checkpoints_with_our_loader_and_loss_weighting_load_as_weights_only(
    in_repo_root, tmp_path, monkeypatch
):
    # Our data loader with its temperature sampler, a loss weighting with state (DWA's weights and loss
    # history), our Jacobian descent callback and a learning-rate scheduler, all in the checkpoints.
    overrides = {
        "trainer.num_epochs": 2,
        "trainer.learning_rate_scheduler": {"type": "step", "step_size": 1},
        "trainer.callbacks": [{"type": "jacobian_descent"}],
        "data_loader.sampler": {"type": "temperature", "temperature": 2.0},
        "data_loader.instances_per_epoch": 64,
        "model.loss_weights": None,
        "model.loss_weighting": {"type": "dwa"},
    }
    run = tmp_path / "run"
    train = ["train", str(EXAMPLE_CONFIG), "-s", str(run), "-o", json.dumps(overrides)]
    allennlp(*train, monkeypatch=monkeypatch)
    checkpoints = sorted(run.glob("*.th"))
    assert {"best.th", "model_state_e1_b0.th", "training_state_e1_b0.th"} <= {path.name for path in checkpoints}
    for checkpoint in checkpoints:
        torch.load(checkpoint, map_location="cpu", weights_only=True)
    best = {key: value for key, value in json.loads((run / "metrics.json").read_text()).items() if "best" in key}
    # Resuming the finished run restores its model and training state (the metric tracker's best metrics)
    # and archives the best weights, PyTorch made to load every file with `weights_only`, whoever asks.
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
    allennlp(*train, "-r", monkeypatch=monkeypatch)
    resumed = json.loads((run / "metrics.json").read_text())
    assert {key: value for key, value in resumed.items() if "best" in key} == best
