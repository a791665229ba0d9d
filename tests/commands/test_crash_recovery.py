"""
What a crash leaves in a serialization directory: every file a run writes takes its name in one rename,
and `allennlp train -r` resumes past what earlier crashes (or earlier, non-atomic versions) tore or
left half-written, with no clean-up by hand, ending as an uninterrupted run ends.

The runs are those of `test_recovery_and_determinism` (the example, 3 epochs), stopped in their last
epoch, after the checkpoints of epochs 1 and 2 (`model_state_e2_b0.th` and the like) were written.
"""

import json
import os
import tarfile
from pathlib import Path
from typing import List

import pytest
import torch

from tests.commands.runs import EPOCHS, SimulatedCrash, final_metrics, train

# Appended to as the run goes: the logs, and the record the tests' callback keeps.
NOT_REPLACED = {"out.log", "stderr.log", "trained_epochs.txt"}


def tear(path: Path) -> None:
    """Leaves the first half of the file at `path`, in a new file (not through its hard links)."""
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[: len(data) // 2])


def crashed_in_last_epoch(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SimulatedCrash):
        train(run, monkeypatch, crash_in_epoch=EPOCHS - 1)
    assert {"model_state_e2_b0.th", "training_state_e2_b0.th", "best.th"} <= set(os.listdir(run))


def test_every_file_a_run_writes_takes_its_name_in_one_rename(in_repo_root, tmp_path, monkeypatch):
    renamed: List[str] = []
    for name in ["replace", "rename"]:
        original = getattr(os, name)

        def recording(source, target, *args, original=original, **kwargs):
            renamed.append(os.path.basename(target))
            return original(source, target, *args, **kwargs)

        monkeypatch.setattr(os, name, recording)
    run = tmp_path / "run"
    train(run, monkeypatch, epochs=2)
    written = set(os.listdir(run)) - NOT_REPLACED
    assert {"config.json", "meta.json", "vocabulary", "best.th", "metrics.json", "model.tar.gz"} <= written
    assert {"model_state_e2_b0.th", "training_state_e2_b0.th", "metrics_epoch_1.json"} <= written
    assert written - set(renamed) == set()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda run: tear(run / "model_state_e2_b0.th"), id="torn model state"),
        pytest.param(lambda run: (run / "training_state_e2_b0.th").unlink(), id="missing training state"),
    ],
)
def test_train_r_resumes_from_the_newest_whole_checkpoint_and_names_what_it_skips(
    uninterrupted_run,
    in_repo_root,
    tmp_path,
    monkeypatch,
    damage,
):
    # AllenNLP's `-r` crashed: `OSError: [Errno 22] Invalid argument`, or `FileNotFoundError`.
    run = tmp_path / "run"
    crashed_in_last_epoch(run, monkeypatch)
    damage(run)
    train(run, monkeypatch, "-r", crash_in_epoch=EPOCHS - 1)
    skipped = [line for line in (run / "out.log").read_text().splitlines() if "Skipping the checkpoint" in line]
    assert len(skipped) == 1 and f"{run}/model_state_e2_b0.th" in skipped[0]
    assert final_metrics(run) == final_metrics(uninterrupted_run)


def test_train_r_copes_with_a_torn_best_model_and_archive(
    uninterrupted_run,
    in_repo_root,
    tmp_path,
    monkeypatch,
):
    # As an earlier version, which wrote best.th and model.tar.gz in place, could leave them.
    run = tmp_path / "run"
    crashed_in_last_epoch(run, monkeypatch)
    tear(run / "best.th")
    (run / "model.tar.gz").write_bytes(b"\x1f\x8b torn")
    train(run, monkeypatch, "-r", crash_in_epoch=EPOCHS - 1)
    assert final_metrics(run) == final_metrics(uninterrupted_run)
    best, expected = (torch.load(path / "best.th") for path in [run, uninterrupted_run])
    assert all(torch.equal(best[name], expected[name]) for name in expected)
    with tarfile.open(run / "model.tar.gz") as archive:
        assert json.load(archive.extractfile("config.json"))["trainer"]["num_epochs"] == EPOCHS


def test_a_run_killed_after_its_last_checkpoint_resumes_to_the_last_epochs_metrics(
    uninterrupted_run,
    in_repo_root,
    tmp_path,
    monkeypatch,
):
    # AllenNLP's resumed run, with nothing left to train, wrote a metrics.json of the best_* metrics only.
    run = tmp_path / "run"
    train(run, monkeypatch)
    for name in ["metrics.json", "model.tar.gz"]:  # As a kill after the last checkpoint leaves the run.
        (run / name).unlink()
    train(run, monkeypatch, "-r")
    assert final_metrics(run) == final_metrics(uninterrupted_run)
    assert (run / "model.tar.gz").exists()
