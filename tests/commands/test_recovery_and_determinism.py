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

import pytest
from allennlp.common.checks import ConfigurationError

from tests.commands.runs import EPOCHS, SimulatedCrash, assert_same_weights, final_metrics, train, trained_epochs


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
