"""`Covariance`, `PearsonCorrelation` and `SpearmanCorrelation`, alone and on two workers."""

import numpy
import pytest
import scipy.stats
import torch
from allennlp.training.metrics import Covariance as AllenNlpCovariance
from allennlp.training.metrics import PearsonCorrelation as AllenNlpPearsonCorrelation
from allennlp.training.metrics import SpearmanCorrelation as AllenNlpSpearmanCorrelation

from allennlp_multitask.training.metrics import Covariance, PearsonCorrelation, SpearmanCorrelation
from tests.training.metrics.workers import WorkerBatches, read_in_one_process, read_on_two_workers


def scores_batch(seed: int, size: int, masked: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Predictions, gold values correlated with them (with ties), and a mask leaving out about `masked` of them."""
    generator = torch.Generator().manual_seed(seed)
    predictions = torch.randn(size, generator=generator)
    gold = (2 * predictions + torch.randn(size, generator=generator)).round()
    return predictions, gold, torch.rand(size, generator=generator) >= masked


# Batches of different sizes on the two workers; worker 1's last batch is entirely masked.
BATCHES: WorkerBatches = [
    [scores_batch(0, 7), scores_batch(1, 3), scores_batch(2, 11)],
    [scores_batch(3, 2), scores_batch(4, 9), scores_batch(5, 4, masked=1.0)],
]


def unmasked_union(batches: WorkerBatches) -> tuple[numpy.ndarray, numpy.ndarray]:
    """All workers' unmasked predictions and gold values, step by step, in rank order."""
    steps = [arguments for step in zip(*batches) for arguments in step]
    predictions = torch.cat([predictions[mask] for predictions, _, mask in steps]).double().numpy()
    gold = torch.cat([gold[mask] for _, gold, mask in steps]).double().numpy()
    return predictions, gold


@pytest.mark.distributed
def test_every_worker_gets_the_covariance_of_one_process_over_all_instances(tmp_path):
    results = read_on_two_workers(Covariance(), BATCHES, tmp_path)
    expected = numpy.cov(*unmasked_union(BATCHES))[0, 1]
    assert results[0] == results[1] == pytest.approx(expected, rel=1e-12)


@pytest.mark.distributed
def test_every_worker_gets_the_pearson_correlation_of_one_process_over_all_instances(tmp_path):
    results = read_on_two_workers(PearsonCorrelation(), BATCHES, tmp_path)
    expected = scipy.stats.pearsonr(*unmasked_union(BATCHES))[0]
    assert 0.5 < expected < 1
    assert results[0] == results[1] == pytest.approx(expected, rel=1e-12)


@pytest.mark.distributed
def test_every_worker_gets_the_spearman_correlation_of_one_process_over_all_instances(tmp_path):
    results = read_on_two_workers(SpearmanCorrelation(), BATCHES, tmp_path)
    expected = scipy.stats.spearmanr(*unmasked_union(BATCHES))[0]
    assert 0.5 < expected < 1
    assert results[0] == results[1] == pytest.approx(expected, rel=1e-12)


def test_in_one_process_they_are_allennlps_metrics():
    unmasked = [[(predictions, gold) for predictions, gold, _ in BATCHES[0]]]
    masked = [BATCHES[0]]
    for ours, theirs, batches in [
        (Covariance(), AllenNlpCovariance(), masked),
        (PearsonCorrelation(), AllenNlpPearsonCorrelation(), masked),
        # AllenNLP's Spearman correlation counts masked elements as pairs of zeros: no mask here.
        (SpearmanCorrelation(), AllenNlpSpearmanCorrelation(), unmasked),
    ]:
        expected = read_in_one_process(theirs, batches)
        assert read_in_one_process(ours, batches) == pytest.approx(expected, rel=1e-6), type(ours).__name__


def test_masked_elements_are_left_out():
    predictions, gold, mask = BATCHES[0][0]
    for metric_class in [Covariance, PearsonCorrelation, SpearmanCorrelation]:
        masked = read_in_one_process(metric_class(), [[(predictions, gold, mask)]])
        # The masked elements replaced by far-off values change nothing.
        far_off = torch.where(mask, predictions, torch.full_like(predictions, 1e6))
        assert read_in_one_process(metric_class(), [[(far_off, gold, mask)]]) == masked, metric_class.__name__
        assert read_in_one_process(metric_class(), [[(predictions[mask], gold[mask])]]) == pytest.approx(masked)
        # A batch with every element masked changes nothing (AllenNLP's covariance turns NaN).
        nothing = torch.zeros_like(mask)
        with_empty = read_in_one_process(metric_class(), [[(predictions, gold, mask), (predictions, gold, nothing)]])
        assert with_empty == masked, metric_class.__name__
