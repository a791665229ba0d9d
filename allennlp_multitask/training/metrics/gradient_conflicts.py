from typing import Dict

import torch
from allennlp.training.metrics import Metric


class GradientConflicts(Metric):
    """
    How the tasks' gradients on the shared parameters relate, over the training steps that had two or
    more of them. Fed each such step's Gramian (the inner products of its task gradients), it reports
    `gradient_conflict_share`, the share of those steps in which some pair of task gradients has a
    negative inner product (each task pulls against another), and `gradient_cosine_mean`, the mean
    cosine similarity over every pair of task gradients of every step. It reports nothing before it has
    seen such a step.

    Under distributed training every worker feeds it the same Gramian (that of the gradients reduced
    across workers), so it sums nothing across workers.

    # Parameters

    prefix : `str`, optional (default = `""`)
        Put before the names of what it reports, to say which gradients it measured (e.g.
        `"representation_"` for gradients on the backbone's outputs rather than its parameters).
    """

    def __init__(self, prefix: str = "") -> None:
        self._conflict_share_name = f"{prefix}gradient_conflict_share"
        self._cosine_mean_name = f"{prefix}gradient_cosine_mean"
        self.reset()

    def __call__(self, gramian: torch.Tensor) -> None:  # type: ignore
        """Counts one step, given the `(tasks, tasks)` Gramian of its task gradients (at least two)."""
        gramian = gramian.detach().double()
        norms = gramian.diagonal().clamp(min=0).sqrt()
        first, second = torch.triu_indices(len(gramian), len(gramian), offset=1)
        inner_products = gramian[first, second]
        # A zero gradient is orthogonal to every other: cosine 0, no conflict.
        cosines = inner_products / (norms[first] * norms[second]).clamp(min=torch.finfo(gramian.dtype).tiny)
        self._steps += 1
        self._conflicting_steps += int(bool((inner_products < 0).any()))
        self._cosine_sum += float(cosines.sum())
        self._pairs += len(cosines)

    def get_metric(self, reset: bool = False) -> Dict[str, float]:
        metrics = {}
        if self._steps:
            metrics = {
                self._conflict_share_name: self._conflicting_steps / self._steps,
                self._cosine_mean_name: self._cosine_sum / self._pairs,
            }
        if reset:
            self.reset()
        return metrics

    def reset(self) -> None:
        self._steps = 0
        self._conflicting_steps = 0
        self._cosine_sum = 0.0
        self._pairs = 0
