from typing import Optional

import torch
from allennlp.common.util import is_distributed
from allennlp.training.metrics import Metric
from allennlp.training.metrics import SpearmanCorrelation as AllenNlpSpearmanCorrelation

from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.training.metrics.gather import cat_rows_from_workers


@replace_registration(Metric, "spearman_correlation")
class SpearmanCorrelation(AllenNlpSpearmanCorrelation):
    """
    AllenNLP's `SpearmanCorrelation`, the Spearman rank correlation of predictions and gold labels over
    all updates since the last reset, which also works under distributed training. AllenNLP's raises
    there when workers' batches differ in size, and otherwise counts every earlier batch once more at
    each update (it gathers its running totals, not the new batch).

    A rank statistic needs every value: each update keeps the batch's (prediction, gold label) pairs,
    and under distributed training gathers the pairs of every worker's batch (batches may differ in
    size), so that every worker holds all workers' pairs. Every worker must update the metric at the
    same steps. Masked elements are left out (AllenNLP's counts them as pairs of zeros). Values are kept
    in double precision.

    Registered as a `Metric` with name "spearman_correlation", replacing AllenNLP's registration.

    # Parameters

    None: like AllenNLP's, it takes no constructor parameters.
    """

    supports_distributed = True

    def __call__(
        self,
        predictions: torch.Tensor,
        gold_labels: torch.Tensor,
        mask: Optional[torch.BoolTensor] = None,
    ) -> None:
        """Takes what `Covariance.__call__` takes: predictions, gold values of their shape, an optional mask."""
        predictions, gold_labels, mask = self.detach_tensors(predictions, gold_labels, mask)
        pairs = torch.stack([predictions.reshape(-1).double(), gold_labels.reshape(-1).double()], dim=1)
        if mask is not None:
            pairs = pairs[mask.reshape(-1).bool()]
        if is_distributed():
            pairs = cat_rows_from_workers(pairs)
        self.total_predictions = torch.cat((self.total_predictions.to(pairs), pairs[:, 0]))
        self.total_gold_labels = torch.cat((self.total_gold_labels.to(pairs), pairs[:, 1]))
