from typing import Dict, List, Optional

import torch
from allennlp.common.util import is_distributed
from allennlp.training.metrics import Metric
from allennlp.training.metrics import SpanBasedF1Measure as AllenNlpSpanBasedF1Measure

from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.training.metrics.gather import sum_counts_of_workers


@replace_registration(Metric, "span_f1")
class SpanBasedF1Measure(AllenNlpSpanBasedF1Measure):
    """
    AllenNLP's `SpanBasedF1Measure` (the same arguments, spans and metric names: `precision-{label}`,
    `recall-{label}`, `f1-measure-{label}` and the `-overall` ones), which also works under distributed
    training, where AllenNLP's raises in `get_metric`.

    Under distributed training each update counts the batch's true positives, false positives and false
    negatives by label, and sums those counts over all workers, so that every worker holds the counts of
    all workers' instances, and its metrics are those one process computes over all of them. Every
    worker must update the metric at the same steps (as it must AllenNLP's `CategoricalAccuracy`).

    Registered as a `Metric` with name "span_f1", replacing AllenNLP's registration.

    # Parameters

    The same as AllenNLP's `SpanBasedF1Measure`:

    vocabulary : `Vocabulary`
        The vocabulary holding the tag namespace.
    tag_namespace : `str`, optional (default = `"tags"`)
        The vocabulary namespace of the tags.
    ignore_classes : `List[str]`, optional (default = `None`)
        Span labels left out of the metrics (e.g. `"V"` for semantic role labelling).
    label_encoding : `str`, optional (default = `"BIO"`)
        The tags' encoding: `"BIO"`, `"IOB1"`, `"BIOUL"` or `"BMES"`; `None` when `tags_to_spans_function`
        is given.
    tags_to_spans_function : `Callable`, optional (default = `None`)
        A function from a list of tags to spans, instead of `label_encoding`.
    """

    supports_distributed = True

    def __call__(
        self,
        predictions: torch.Tensor,
        gold_labels: torch.Tensor,
        mask: Optional[torch.BoolTensor] = None,
        prediction_map: Optional[torch.Tensor] = None,
    ) -> None:
        totals = self._tallies()
        # AllenNLP's update counts this batch alone into fresh tallies, which are then added to the totals.
        self.reset()
        try:
            super().__call__(predictions, gold_labels, mask, prediction_map)
            batch_counts = self._tallies()
        finally:
            self._true_positives, self._false_positives, self._false_negatives = totals
        if is_distributed():
            batch_counts = sum_counts_of_workers(batch_counts)
        for total, counts in zip(totals, batch_counts):
            for label, count in counts.items():
                total[label] += count

    def get_metric(self, reset: bool = False) -> Dict[str, float]:
        """
        Precision, recall and F1 of each span label (in label order), and `-overall` ones over all spans.
        """
        metrics: Dict[str, float] = {}
        tallies = self._tallies()
        for label in sorted({label for tally in tallies for label in tally}):
            self._add_metrics(metrics, label, *[tally[label] for tally in tallies])
        self._add_metrics(metrics, "overall", *[sum(tally.values()) for tally in tallies])
        if reset:
            self.reset()
        return metrics

    def _tallies(self) -> List[Dict[str, int]]:
        """The true positives, false positives and false negatives, by span label."""
        return [self._true_positives, self._false_positives, self._false_negatives]

    def _add_metrics(
        self, metrics: Dict[str, float], label: str, true_positives: int, false_positives: int, false_negatives: int
    ) -> None:
        precision, recall, f1_measure = self._compute_metrics(true_positives, false_positives, false_negatives)
        metrics[f"precision-{label}"] = precision
        metrics[f"recall-{label}"] = recall
        metrics[f"f1-measure-{label}"] = f1_measure
