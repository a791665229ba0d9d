"""
AllenNLP's metrics that refuse distributed training (or give wrong results under it), replaced under
their registered names by subclasses that gather what each worker saw at every update; and the
gradient-conflict diagnostics of the `jacobian_descent` callback.
"""

from allennlp_multitask.training.metrics.covariance import Covariance
from allennlp_multitask.training.metrics.gradient_conflicts import GradientConflicts
from allennlp_multitask.training.metrics.pearson_correlation import PearsonCorrelation
from allennlp_multitask.training.metrics.span_based_f1_measure import SpanBasedF1Measure
from allennlp_multitask.training.metrics.spearman_correlation import SpearmanCorrelation

__all__ = ["Covariance", "GradientConflicts", "PearsonCorrelation", "SpanBasedF1Measure", "SpearmanCorrelation"]
