from typing import Optional

import torch
from allennlp.common.util import is_distributed
from allennlp.training.metrics import Covariance as AllenNlpCovariance
from allennlp.training.metrics import Metric

from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.training.metrics.gather import stack_from_workers


@replace_registration(Metric, "covariance")
class Covariance(AllenNlpCovariance):
    """
    AllenNLP's `Covariance`, the unbiased sample covariance of predictions and gold labels over all
    updates since the last reset (masked elements left out), which also works under distributed
    training, where AllenNLP's raises in `get_metric`.

    Each update sums up its batch as a count, two means and a co-moment, and merges these into the
    running totals with the pairwise formula AllenNLP uses (Chan et al.), in double precision. Under
    distributed training every worker's batch statistics are gathered and merged, in rank order, so that
    every worker holds the totals of all workers' instances. Every worker must update the metric at the
    same steps. A batch without unmasked elements changes nothing (AllenNLP's turns the totals to NaN).

    Registered as a `Metric` with name "covariance", replacing AllenNLP's registration.

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
        """
        # Parameters

        predictions : `torch.Tensor`
            Predictions of any shape; each element is one observation.
        gold_labels : `torch.Tensor`
            Gold values of the same shape.
        mask : `torch.BoolTensor`, optional (default = `None`)
            Of the same shape; elements where it is false are left out.
        """
        predictions, gold_labels, mask = self.detach_tensors(predictions, gold_labels, mask)
        x = predictions.reshape(-1).double()
        y = gold_labels.reshape(-1).double()
        weights = torch.ones_like(x) if mask is None else mask.reshape(-1).to(x.dtype)
        count = weights.sum()
        mean_x = (x * weights).sum() / count
        mean_y = (y * weights).sum() / count
        co_moment = ((x - mean_x) * (y - mean_y) * weights).sum()
        statistics = torch.stack([count, mean_x, mean_y, co_moment])
        batches = stack_from_workers(statistics).tolist() if is_distributed() else [statistics.tolist()]
        for batch_count, batch_mean_x, batch_mean_y, batch_co_moment in batches:
            if batch_count:
                self._merge(batch_count, batch_mean_x, batch_mean_y, batch_co_moment)

    def _merge(self, count: float, mean_x: float, mean_y: float, co_moment: float) -> None:
        total_count = self._total_count + count
        self._total_co_moment += co_moment + (
            (self._total_prediction_mean - mean_x)
            * (self._total_label_mean - mean_y)
            * (self._total_count * count / total_count)
        )
        self._total_prediction_mean += (mean_x - self._total_prediction_mean) * count / total_count
        self._total_label_mean += (mean_y - self._total_label_mean) * count / total_count
        self._total_count = total_count

    def get_metric(self, reset: bool = False) -> float:
        """The sample covariance (co-moment over count - 1) of everything seen since the last reset."""
        covariance = self._total_co_moment / (self._total_count - 1)
        if reset:
            self.reset()
        return covariance
