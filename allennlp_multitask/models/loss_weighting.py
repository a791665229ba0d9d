"""
Strategies that combine the heads' losses into the one loss a multitask model optimises.
"""

import functools
import math
import operator
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import torch
import torch.distributed as dist
from allennlp.common import Registrable
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import is_distributed


def _sum_in_order(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """`terms[0] + terms[1] + ...`, added left to right as AllenNLP's model adds head losses (at least one)."""
    return functools.reduce(operator.add, terms)


def mean_by_head(losses: Sequence[Mapping[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Each head's loss averaged over the batches of `losses` (each a loss by head) that it has a loss in."""
    heads = dict.fromkeys(head for batch in losses for head in batch)
    return {head: torch.stack([batch[head] for batch in losses if head in batch]).mean() for head in heads}


class LossWeighting(torch.nn.Module, Registrable):
    """
    Combines per-head losses into one loss. The model builds it with the names of its heads, and calls
    it with the losses of the heads that ran on a batch. Subclasses give each head's term (`terms`); the
    combined loss is their sum.

    Subclasses whose weights change during training set `reports_weights = True`; the model then reports
    each head's current weight as the metric `{head}_loss_weight`.

    # Parameters

    head_names : `Sequence[str]`
        The model's heads, in the model's order. Given by the model, not in the configuration.
    """

    default_implementation = "static"
    reports_weights = False

    def __init__(self, head_names: Sequence[str]) -> None:
        super().__init__()
        self.head_names = list(head_names)

    def forward(self, head_losses: Mapping[str, torch.Tensor]) -> torch.Tensor:  # type: ignore
        """Returns the combined loss of the heads in `head_losses` (at least one): the sum of their `terms`."""
        return _sum_in_order(self.terms(head_losses).values())

    def terms(self, head_losses: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """
        Each head's term of the combined loss (its weighted loss), by head in the order of `head_losses`.
        Unlike `forward`, updates nothing: Jacobian descent calls it again on a batch's losses.
        """
        raise NotImplementedError

    def current_weights(self) -> Dict[str, float]:
        """Each head's present weight."""
        raise NotImplementedError

    def end_of_epoch(self) -> None:
        """Called when the model's metrics are reset, at the end of each training and validation pass."""

    def bind(self, model: torch.nn.Module) -> None:
        """Called by the model once it is built, for a weighting that reads the model's parameters."""

    learns_after_step = False
    """Whether `update_after_step` must get the training batches' losses before and after each optimizer step."""

    def update_after_step(
        self, losses_before: Mapping[str, torch.Tensor], losses_after: Mapping[str, torch.Tensor]
    ) -> None:
        """
        Learns, when `learns_after_step`, from the change in the losses of the training batches of the
        last optimizer step (several with gradient accumulation) over that step: each head's loss averaged
        over the batches it ran on, as the forward passes computed it (`losses_before`) and recomputed
        on the same batches after the step (`losses_after`).
        """

    def running_state(self) -> List[torch.Tensor]:
        """
        The tensors that `forward` updates in place (e.g. running loss sums). The model keeps a copy
        before its heads run, so that a forward pass that fails leaves them as they were.
        """
        return []


@LossWeighting.register("static")
class StaticLossWeighting(LossWeighting):
    """
    Fixed weights: the weighted sum of the heads' losses, as AllenNLP's `MultiTaskModel` computes it.
    This is the default, configured through the model's `loss_weights`.

    Registered as a `LossWeighting` with name "static".

    # Parameters

    head_names : `Sequence[str]`
        Given by the model.
    weights : `Mapping[str, float]`, optional (default = `None`)
        A weight per head; heads left out weigh 1.0.
    """

    def __init__(self, head_names: Sequence[str], weights: Optional[Mapping[str, float]] = None) -> None:
        super().__init__(head_names)
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(self.head_names))
        if unknown:
            raise ConfigurationError(
                f"Static loss weights (loss_weights) name {unknown}, which are not heads; heads: {self.head_names}."
            )
        self.weights = {head: float(weights.get(head, 1.0)) for head in self.head_names}

    def terms(self, head_losses: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        # Weight one is skipped: the same loss and gradients, and per head two autograd ops fewer.
        return {
            head: loss if self.weights[head] == 1.0 else self.weights[head] * loss for head, loss in head_losses.items()
        }

    def current_weights(self) -> Dict[str, float]:
        return dict(self.weights)


@LossWeighting.register("uncertainty")
class UncertaintyLossWeighting(LossWeighting):
    """
    Homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla, 2018): each head has a learnable
    log-variance `s = log(sigma^2)`, and contributes `exp(-s) * loss + s`. This is the paper's
    `loss / (2 sigma^2) + log(sigma)` doubled, so that `s = 0` starts as the plain sum of the losses.
    A head whose loss stays high learns a large variance and a small weight `exp(-s)`: for a fixed
    loss `L` the optimum is `s = log(L)`, and the `+ s` term keeps variances from growing without
    bound. The log-variances are parameters of the model (`_loss_weighting.log_variances`), so the
    optimizer trains them and the archive saves them. The model reports each head's `exp(-s)` as
    `{head}_loss_weight`.

    Registered as a `LossWeighting` with name "uncertainty".

    # Parameters

    head_names : `Sequence[str]`
        Given by the model.
    initial_log_variance : `float`, optional (default = `0.0`)
        The starting `s` of every head (0.0 gives every head weight 1.0).
    """

    reports_weights = True

    def __init__(self, head_names: Sequence[str], initial_log_variance: float = 0.0) -> None:
        super().__init__(head_names)
        if not math.isfinite(initial_log_variance):
            raise ConfigurationError(
                f"uncertainty loss weighting needs a finite initial_log_variance, got {initial_log_variance}."
            )
        self.log_variances = torch.nn.Parameter(torch.full((len(self.head_names),), float(initial_log_variance)))
        self._position = {head: index for index, head in enumerate(self.head_names)}

    def terms(self, head_losses: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        log_variances = {head: self.log_variances[self._position[head]] for head in head_losses}
        return {
            head: torch.exp(-log_variances[head]) * loss + log_variances[head] for head, loss in head_losses.items()
        }

    def current_weights(self) -> Dict[str, float]:
        weights = torch.exp(-self.log_variances.detach()).tolist()
        return dict(zip(self.head_names, weights))


@LossWeighting.register("dwa")
class DynamicWeightAverage(LossWeighting):
    """
    Dynamic Weight Average (Liu, Johns & Davison, 2019). Each training epoch's weights come from how
    fast each head's average training loss fell over the two epochs before:
    `w_k = K * softmax_k(r_k / T)` with `r_k = L_k(t-1) / L_k(t-2)` and `K` the number of heads, so a
    head whose loss falls slowly gets more weight. The first two epochs use weight 1.0 for every head.
    Loss history and weights are buffers (`_loss_weighting.loss_history`, `_loss_weighting.weights`),
    so they are saved with the model and survive a resumed run.

    An epoch ends when the model's metrics are reset (`get_metrics(reset=True)`, as AllenNLP's trainer
    does after each training and validation pass); only training batches count towards the averages.
    The model reports the weights as `{head}_loss_weight`: in a pass's metrics, the weights its loss
    was computed with (validation metrics thus show the weights of the next training epoch).

    Registered as a `LossWeighting` with name "dwa".

    # Parameters

    head_names : `Sequence[str]`
        Given by the model.
    temperature : `float`, optional (default = `2.0`)
        `T` above, positive and finite: large values make the weights more even.
    """

    reports_weights = True

    def __init__(self, head_names: Sequence[str], temperature: float = 2.0) -> None:
        super().__init__(head_names)
        if not (0 < temperature < math.inf):
            raise ConfigurationError(f"dwa loss weighting needs a positive, finite temperature, got {temperature}.")
        self.temperature = float(temperature)
        heads = len(self.head_names)
        self._position = {head: index for index, head in enumerate(self.head_names)}
        self.register_buffer("weights", torch.ones(heads))
        # Average training loss of each head in the last two epochs (row 0 the older); NaN when unknown.
        self.register_buffer("loss_history", torch.full((2, heads), float("nan")))
        # This epoch's training-loss sums and counts per head. Plain tensors (moved with the module by
        # `_apply`), not buffers: DistributedDataParallel overwrites every buffer with rank 0's before
        # each forward, which would drop the other ranks' losses.
        self._epoch_loss_sum = torch.zeros(heads)
        self._epoch_loss_count = torch.zeros(heads)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> "DynamicWeightAverage":
        super()._apply(fn, recurse)
        self._epoch_loss_sum = fn(self._epoch_loss_sum)
        self._epoch_loss_count = fn(self._epoch_loss_count)
        return self

    def forward(self, head_losses: Mapping[str, torch.Tensor]) -> torch.Tensor:  # type: ignore
        if self.training:
            for head, loss in head_losses.items():
                self._epoch_loss_sum[self._position[head]] += loss.detach()
                self._epoch_loss_count[self._position[head]] += 1
        return super().forward(head_losses)

    def terms(self, head_losses: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        return {head: self.weights[self._position[head]] * loss for head, loss in head_losses.items()}

    def current_weights(self) -> Dict[str, float]:
        return dict(zip(self.head_names, self.weights.tolist()))

    def running_state(self) -> List[torch.Tensor]:
        return [self._epoch_loss_sum, self._epoch_loss_count]

    def end_of_epoch(self) -> None:
        sums, counts = self._epoch_loss_sum.clone(), self._epoch_loss_count.clone()
        if is_distributed():
            dist.all_reduce(sums)
            dist.all_reduce(counts)
        if counts.sum() == 0:
            return  # A validation pass, or no training batch since the last epoch ended.
        averages = torch.where(counts > 0, sums / counts.clamp(min=1), self.loss_history[1])
        self.loss_history.copy_(torch.stack([self.loss_history[1], averages]))
        ratios = self.loss_history[1] / self.loss_history[0]
        if torch.isfinite(ratios).all():  # Not before two epochs, nor after an average loss of zero.
            self.weights.copy_(len(self.head_names) * torch.softmax(ratios / self.temperature, dim=0))
        self._epoch_loss_sum.zero_()
        self._epoch_loss_count.zero_()
