"""
`allennlp train` of the bundled two-task example, in-process: two runs with the same seeds end identical,
and a run that crashes after its first epoch resumes with `allennlp train -r` and ends as if it had
never stopped. The runs last 3 epochs instead of the example's 5.

How the crash is made: `train -r` refuses any change to the configuration (it compares it with the
saved `config.json` key by key), so a run cannot be stopped by training 1 epoch and resumed with 3.
Instead a callback raises once, after the first batch of epoch 1 (epoch 0's checkpoint is written by
then), as a killed job would stop; `train -r` with the same configuration restores that checkpoint.

The resumed run is exact even when validation draws random numbers: with our `multitask` data loader,
checkpoints hold the loader's position and every random generator's state, which `-r` puts back
(AllenNLP re-seeded and read the finished epochs' training data again, without their validation passes,
so a shuffled validation set made the resumed run shuffle differently from an uninterrupted one).
"""

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.training.callbacks import TrainerCallback

from tests.commands.test_predict_evaluate import allennlp
from tests.conftest import EXAMPLE_CONFIG, REPO_ROOT

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
) -> None:
    overrides = {
        "trainer.num_epochs": epochs,
        "trainer.callbacks": [{"type": "test_crash_once", "crash_in_epoch": crash_in_epoch}],
        **({"validation_data_loader.shuffle": True} if shuffle_validation else {}),
    }
    arguments = ["train", str(EXAMPLE_CONFIG), "-s", str(run), "-o", json.dumps(overrides), *options]
    allennlp(*arguments, monkeypatch=monkeypatch)


def final_metrics(run: Path) -> Dict[str, Any]:
    """The run's `metrics.json`, less its durations and memory use."""
    metrics = json.loads((run / "metrics.json").read_text())
    return {key: value for key, value in metrics.items() if "duration" not in key and "memory" not in key}


def final_weights(run: Path) -> Dict[str, torch.Tensor]:
    return torch.load(run / f"model_state_e{EPOCHS}_b0.th", map_location="cpu")


def trained_epochs(run: Path) -> List[int]:
    return [int(line) for line in (run / "trained_epochs.txt").read_text().split()]


def assert_same_weights(run: Path, reference: Path) -> None:
    weights, expected = final_weights(run), final_weights(reference)
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[name], expected[name]) for name in expected)


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(REPO_ROOT)
        train(run, monkeypatch)
    return run


def test_two_runs_with_the_same_seeds_end_with_identical_metrics_and_weights(
    uninterrupted_run, in_repo_root, tmp_path, monkeypatch
):
    train(tmp_path / "run", monkeypatch)
    metrics = final_metrics(tmp_path / "run")
    assert metrics == final_metrics(uninterrupted_run)
    assert metrics["epoch"] == EPOCHS - 1
    assert {"validation_sentiment_accuracy", "validation_topic_accuracy"} <= metrics.keys()
    assert_same_weights(tmp_path / "run", uninterrupted_run)


def test_a_crashed_run_resumes_with_train_r_and_ends_as_if_never_stopped(
    uninterrupted_run, in_repo_root, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    with pytest.raises(SimulatedCrash):
        train(run, monkeypatch, crash_in_epoch=1)
    before_crash = trained_epochs(run)
    with pytest.raises(ConfigurationError, match="does not match the configuration we're recovering from"):
        train(run, monkeypatch, "-r", crash_in_epoch=1, epochs=EPOCHS + 1)

    train(run, monkeypatch, "-r", crash_in_epoch=1)

    # Epoch 0 trained once; epoch 1 restarted from epoch 0's checkpoint; nothing trained twice after.
    all_epochs = trained_epochs(uninterrupted_run)
    assert before_crash == [epoch for epoch in all_epochs if epoch == 0] + [1]
    assert trained_epochs(run)[len(before_crash) :] == [epoch for epoch in all_epochs if epoch > 0]
    assert final_metrics(run) == final_metrics(uninterrupted_run)
    assert_same_weights(run, uninterrupted_run)


def test_resuming_is_exact_when_validation_draws_random_numbers(in_repo_root, tmp_path, monkeypatch):
    # AllenNLP's `-r` did not replay validation's shuffling: the resumed run's training loss differed.
    train(tmp_path / "uninterrupted", monkeypatch, shuffle_validation=True, epochs=2)
    with pytest.raises(SimulatedCrash):
        train(tmp_path / "resumed", monkeypatch, crash_in_epoch=1, shuffle_validation=True, epochs=2)
    train(tmp_path / "resumed", monkeypatch, "-r", crash_in_epoch=1, shuffle_validation=True, epochs=2)
    assert final_metrics(tmp_path / "resumed") == final_metrics(tmp_path / "uninterrupted")
