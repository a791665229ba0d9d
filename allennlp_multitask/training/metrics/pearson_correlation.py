import math
from typing import Optional

import numpy
import torch
from allennlp.training.metrics import Metric
from allennlp.training.metrics import PearsonCorrelation as AllenNlpPearsonCorrelation

from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.training.metrics.covariance import Covariance


@replace_registration(Metric, "pearson_correlation")
class PearsonCorrelation(AllenNlpPearsonCorrelation):
    """
    AllenNLP's `PearsonCorrelation`, the sample Pearson correlation of predictions and gold labels over
    all updates since the last reset, which also works under distributed training, where AllenNLP's
    ignores every update and raises in `get_metric`.

    Like AllenNLP's, it tracks the covariance of predictions and labels and their two variances, here
    with this package's `Covariance`, which gathers each batch's statistics from every worker. So under
    distributed training every worker holds the correlation over all workers' instances. Every worker
    must update the metric at the same steps. The correlation is 0 when a variance rounds to 0, as in
    AllenNLP.

    Registered as a `Metric` with name "pearson_correlation", replacing AllenNLP's registration.

    # Parameters

    None: like AllenNLP's, it takes no constructor parameters.
    """

    supports_distributed = True

    def __init__(self) -> None:
        self._predictions_labels_covariance = Covariance()
        self._predictions_variance = Covariance()
        self._labels_variance = Covariance()

    def __call__(
        self,
        predictions: torch.Tensor,
        gold_labels: torch.Tensor,
        mask: Optional[torch.BoolTensor] = None,
    ) -> None:
        """Takes what `Covariance.__call__` takes: predictions, gold values of their shape, an optional mask."""
        predictions, gold_labels, mask = self.detach_tensors(predictions, gold_labels, mask)
        self._predictions_labels_covariance(predictions, gold_labels, mask)
        self._predictions_variance(predictions, predictions, mask)
        self._labels_variance(gold_labels, gold_labels, mask)

    def get_metric(self, reset: bool = False) -> float:
        """The correlation of everything seen since the last reset."""
        covariance = self._predictions_labels_covariance.get_metric(reset)
        predictions_variance = self._predictions_variance.get_metric(reset)
        labels_variance = self._labels_variance.get_metric(reset)
        denominator = math.sqrt(predictions_variance) * math.sqrt(labels_variance)
        if numpy.around(denominator, decimals=5) == 0:
            return 0.0
        return covariance / denominator
