"""
SIGTERM (a scheduler stopping the job) mid-epoch: `allennlp train` finishes the batch in flight, writes a
checkpoint there and stops; `allennlp train -r` takes up from that batch and ends with the metrics and
weights of a run never stopped, dropout and a shuffled validation set included (every random generator's
state travels in the checkpoint).
"""

import json
import os
import signal
from pathlib import Path
from typing import Any, Dict

import pytest
import torch

from allennlp_multitask.training.preemption import TrainingStopped
from tests.commands.runs import allennlp, final_metrics
from tests.conftest import EXAMPLE_CONFIG

EPOCHS = 3
SIGNALLED_AT = (1, 5)  # Epoch 1, in its fifth batch (of 26).


def train(run: Path, monkeypatch: pytest.MonkeyPatch, *options: str, callbacks: Any) -> None:
    overrides: Dict[str, Any] = {
        "trainer.num_epochs": EPOCHS,
        "trainer.callbacks": callbacks,
        "model.heads.sentiment.dropout": 0.3,
        "validation_data_loader.shuffle": True,
    }
    arguments = ["train", str(EXAMPLE_CONFIG), "-s", str(run), "-o", json.dumps(overrides), *options]
    allennlp(*arguments, monkeypatch=monkeypatch)


@pytest.mark.slow  # trains, is stopped, and resumes: two runs
def test_sigterm_mid_epoch_checkpoints_that_batch_and_train_r_ends_as_if_never_stopped(
    in_repo_root, tmp_path, monkeypatch
):
    # AllenNLP raised at once and lost everything since the last epoch's checkpoint.
    train(tmp_path / "uninterrupted", monkeypatch, callbacks=[])
    handler = signal.getsignal(signal.SIGTERM)
    run = tmp_path / "run"
    callbacks = [{"type": "test_sigterm_once", "epoch": SIGNALLED_AT[0], "batch": SIGNALLED_AT[1]}]
    with pytest.raises(TrainingStopped, match=r"Stopped on SIGTERM after 1 epoch\(s\) and 5 batch\(es\)"):
        train(run, monkeypatch, callbacks=callbacks)
    assert {"model_state_e1_b5.th", "training_state_e1_b5.th"} <= set(os.listdir(run))
    assert f"checkpoint written to {run}/model_state_e1_b5.th" in (run / "out.log").read_text()
    assert signal.getsignal(signal.SIGTERM) is handler  # The handler before training is back.

    train(run, monkeypatch, "-r", callbacks=callbacks)
    assert final_metrics(run) == final_metrics(tmp_path / "uninterrupted")
    final = f"model_state_e{EPOCHS}_b0.th"
    weights, expected = (torch.load(path / final) for path in [run, tmp_path / "uninterrupted"])
    assert all(torch.equal(weights[name], expected[name]) for name in expected)
    # The epoch it stopped in validated as the uninterrupted run's did; only its training_* sums are partial.
    stopped_epoch, uninterrupted_epoch = (
        json.loads((path / "metrics_epoch_1.json").read_text()) for path in [run, tmp_path / "uninterrupted"]
    )
    validation = [key for key in uninterrupted_epoch if key.startswith("validation_")]
    assert {key: stopped_epoch[key] for key in validation} == {key: uninterrupted_epoch[key] for key in validation}
