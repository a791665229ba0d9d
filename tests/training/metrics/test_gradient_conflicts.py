import math

import pytest
import torch

from allennlp_multitask.training.metrics import GradientConflicts


def gramian(*gradients):
    rows = torch.tensor(gradients)
    return rows @ rows.T


def test_counts_steps_with_a_conflicting_pair_and_averages_the_cosine_of_every_pair():
    conflicts = GradientConflicts()
    assert conflicts.get_metric() == {}

    conflicts(gramian([1.0, 0.0], [-1.0, 1.0]))  # conflict, cosine -1/sqrt(2)
    conflicts(gramian([1.0, 0.0], [0.0, 2.0], [3.0, 3.0]))  # no conflict: cosines 0, 1/sqrt(2), 1/sqrt(2)

    assert conflicts.get_metric(reset=True) == pytest.approx(
        {"gradient_conflict_share": 0.5, "gradient_cosine_mean": (-1 + 2) / math.sqrt(2) / 4}
    )
    assert conflicts.get_metric() == {}


def test_a_zero_gradient_is_orthogonal_to_the_others():
    conflicts = GradientConflicts()
    conflicts(gramian([0.0, 0.0], [1.0, -1.0]))
    assert conflicts.get_metric() == {"gradient_conflict_share": 0.0, "gradient_cosine_mean": 0.0}
