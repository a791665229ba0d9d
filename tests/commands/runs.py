"""
The commands of `allennlp` as the command-line tests run them, in this process, with our package included,
and the runs they make: crashed and resumed, stopped by a signal.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import torch
from allennlp.commands import main
from allennlp.training.callbacks import TrainerCallback

from tests.conftest import EXAMPLE_CONFIG, REPO_ROOT

DATA = "examples/data/"


def allennlp(*args: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["allennlp", *args, "--include-package", "allennlp_multitask"])
    main()


def predict(archive: Path, inputs: str, output: Path, *options: str, monkeypatch: pytest.MonkeyPatch) -> List[Dict]:
    allennlp(
        "predict", str(archive), inputs, "--output-file", str(output), "--silent", *options, monkeypatch=monkeypatch
    )
    return [json.loads(line) for line in output.read_text().splitlines()]


def allennlp_process(*args: str) -> subprocess.CompletedProcess:
    """
    `allennlp` as a user runs it, a child process from the repository root with our package included;
    asserts that it succeeds, showing the end of its log if not.
    """
    command = [str(Path(sys.executable).parent / "allennlp"), *args, "--include-package", "allennlp_multitask"]
    finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def read_json_lines(path: Path) -> List[Dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


EPOCHS = 3


class SimulatedCrash(Exception):
    """What `CrashOnce` raises, as a killed training job would stop."""


@TrainerCallback.register("test_crash_once")
class CrashOnce(TrainerCallback):
    """
    Appends the epoch of every training batch to `trained_epochs.txt` in the serialization directory and,
    with `crash_in_epoch`, raises `SimulatedCrash` after that epoch's first batch. A `crashed` file
    marks that it did, so that the resumed run (same configuration, same directory) trains on.

    Registered as a `TrainerCallback` with name "test_crash_once", for these tests only.

    # Parameters

    serialization_dir : `str`
        Given by the trainer.
    crash_in_epoch : `int`, optional (default = `None`)
        The epoch to crash in, once; `None` never crashes.
    """

    def __init__(self, serialization_dir: str, crash_in_epoch: Optional[int] = None) -> None:
        super().__init__(serialization_dir)
        self.crash_in_epoch = crash_in_epoch

    def on_batch(  # type: ignore[override]
        self,
        trainer: Any,
        batch_inputs: Any,
        batch_outputs: Any,
        batch_metrics: Any,
        epoch: int,
        batch_number: int,
        is_training: bool,
        **kwargs: Any,
    ) -> None:
        if not is_training:
            return
        directory = Path(self.serialization_dir)
        with open(directory / "trained_epochs.txt", "a") as log:
            log.write(f"{epoch}\n")
        if epoch == self.crash_in_epoch and not (directory / "crashed").exists():
            (directory / "crashed").touch()
            raise SimulatedCrash(f"Crashed after the first batch of epoch {epoch}.")


def train(
    run: Path,
    monkeypatch: pytest.MonkeyPatch,
    *options: str,
    crash_in_epoch: Optional[int] = None,
    shuffle_validation: bool = False,
    epochs: int = EPOCHS,
    overrides: Optional[Dict[str, Any]] = None,
) -> None:
    """Trains the bundled example, with `overrides` (callbacks in `"trainer.callbacks"` go before the crash's)."""
    more = dict(overrides or {})
    all_overrides = {
        "trainer.num_epochs": epochs,
        "trainer.callbacks": [
            *more.pop("trainer.callbacks", []),
            {"type": "test_crash_once", "crash_in_epoch": crash_in_epoch},
        ],
        **({"validation_data_loader.shuffle": True} if shuffle_validation else {}),
        **more,
    }
    arguments = ["train", str(EXAMPLE_CONFIG), "-s", str(run), "-o", json.dumps(all_overrides), *options]
    allennlp(*arguments, monkeypatch=monkeypatch)


def final_metrics(run: Path) -> Dict[str, Any]:
    """The run's `metrics.json`, less its durations and memory use."""
    metrics = json.loads((run / "metrics.json").read_text())
    return {key: value for key, value in metrics.items() if "duration" not in key and "memory" not in key}


def final_weights(run: Path, epochs: int = EPOCHS) -> Dict[str, torch.Tensor]:
    return torch.load(run / f"model_state_e{epochs}_b0.th", map_location="cpu")


def trained_epochs(run: Path) -> List[int]:
    return [int(line) for line in (run / "trained_epochs.txt").read_text().split()]


def assert_same_weights(run: Path, reference: Path, epochs: int = EPOCHS) -> None:
    weights, expected = final_weights(run, epochs), final_weights(reference, epochs)
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[name], expected[name]) for name in expected)


@TrainerCallback.register("test_sigterm_once")
class SigtermOnce(TrainerCallback):
    """
    Sends this process SIGTERM in a training batch, once (a `signalled` file marks that it did); under
    distributed training, in worker `rank` only.

    Registered as a `TrainerCallback` with name "test_sigterm_once", for these tests only.

    # Parameters

    serialization_dir : `str`
    epoch : `int`
    batch : `int`
        The batch (counted from 1) in which the signal comes.
    rank : `int`, optional (default = `None`)
        The worker that gets the signal; `None` for any.
    """

    def __init__(self, serialization_dir: str, epoch: int, batch: int, rank: Optional[int] = None) -> None:
        super().__init__(serialization_dir)
        self.epoch, self.batch, self.rank = epoch, batch, rank

    def on_batch(
        self,
        trainer: Any,
        batch_inputs: Any,
        batch_outputs: Any,
        batch_metrics: Any,
        epoch: int,  # type: ignore[override]
        batch_number: int,
        is_training: bool,
        **kwargs: Any,
    ) -> None:
        marker = Path(self.serialization_dir) / "signalled"
        chosen = self.rank is None or torch.distributed.get_rank() == self.rank
        if is_training and chosen and (epoch, batch_number) == (self.epoch, self.batch) and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGTERM)


VALIDATION_FILES = {"sentiment": DATA + "sentiment_validation.jsonl", "topic": DATA + "topic_validation.jsonl"}
