"""
`"reduce_on_plateau"` builds on today's torch (AllenNLP's passed `verbose`, which torch removed), follows torch's
schedule, still takes AllenNLP's `verbose` key, and trains a model under `allennlp train`.
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from allennlp.common import Params
from allennlp.training.learning_rate_schedulers import LearningRateScheduler

from tests.conftest import EXAMPLE_CONFIG, REPO_ROOT

SETTINGS = {"mode": "max", "factor": 0.5, "patience": 1, "cooldown": 1, "threshold": 0.01, "min_lr": 0.02}
VALIDATION_METRICS = [0.5, 0.6, 0.6, 0.6, 0.605, *[0.7] * 7]


def learning_rates(scheduler_step, optimizer: torch.optim.Optimizer) -> list:
    rates = []
    for metric in VALIDATION_METRICS:
        scheduler_step(metric)
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


def sgd() -> torch.optim.Optimizer:
    return torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)


def test_the_schedule_is_torchs_and_verbose_logs_each_reduction(caplog):
    optimizer, reference_optimizer = sgd(), sgd()
    scheduler = LearningRateScheduler.from_params(
        Params({"type": "reduce_on_plateau", "verbose": True, **SETTINGS}), optimizer=optimizer
    )
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(reference_optimizer, **SETTINGS)
    with caplog.at_level(logging.INFO):
        rates = learning_rates(scheduler.step, optimizer)

    assert rates == learning_rates(reference.step, reference_optimizer)
    assert rates[-1] == 0.02 and len(set(rates)) == 4  # three reductions, the last down to min_lr
    reductions = [
        record.getMessage() for record in caplog.records if "Reducing the learning rate" in record.getMessage()
    ]
    assert reductions == [
        f"Reducing the learning rate of parameter group 0 to {rate:.4e}." for rate in (0.05, 0.025, 0.02)
    ]


def test_without_verbose_nothing_is_logged_and_the_state_round_trips(caplog):
    optimizer = sgd()
    scheduler = LearningRateScheduler.from_params(
        Params({"type": "reduce_on_plateau", **SETTINGS}), optimizer=optimizer
    )
    with caplog.at_level(logging.INFO):
        learning_rates(scheduler.step, optimizer)
    assert not [record for record in caplog.records if "Reducing" in record.getMessage()]

    restored = LearningRateScheduler.from_params(Params({"type": "reduce_on_plateau", **SETTINGS}), optimizer=sgd())
    restored.load_state_dict(scheduler.state_dict())
    assert restored.state_dict() == scheduler.state_dict()


@pytest.mark.slow
@pytest.mark.subprocess
def test_allennlp_train_reduces_the_learning_rate_on_a_plateau(tmp_path):
    # Accuracy never improves by 1.0: after the first epoch, each epoch is a plateau and halves the rate.
    scheduler = {
        "type": "reduce_on_plateau",
        "mode": "max",
        "factor": 0.5,
        "patience": 0,
        "threshold_mode": "abs",
        "threshold": 1.0,
        "verbose": True,
    }
    overrides = {"trainer.num_epochs": 3, "trainer.learning_rate_scheduler": scheduler}
    allennlp = Path(sys.executable).parent / "allennlp"
    arguments = ["train", str(EXAMPLE_CONFIG), "-s", str(tmp_path / "run"), "-o", json.dumps(overrides)]
    finished = subprocess.run(
        [str(allennlp), *arguments, "--include-package", "allennlp_multitask"],
        cwd=REPO_ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    logs = (tmp_path / "run" / "out.log").read_text()
    # The example's Adam starts at 0.01.
    reductions = [line.split(" - ")[-1] for line in logs.splitlines() if "Reducing the learning rate" in line]
    assert reductions == [f"Reducing the learning rate of parameter group 0 to {rate:.4e}." for rate in (0.005, 0.0025)]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epoch"] == 2
