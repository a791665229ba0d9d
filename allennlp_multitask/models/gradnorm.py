"""
GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, 2018): loss weights learned so that the heads' gradients on
the last shared layer have norms in proportion to how slowly their losses fall.
"""

import math
from typing import Dict, List, Mapping, Optional, Sequence

import torch
from allennlp.common.checks import ConfigurationError

from allennlp_multitask.models.loss_weighting import LossWeighting, _sum_in_order


@LossWeighting.register("gradnorm")
class GradNorm(LossWeighting):
    """
    GradNorm (Chen et al., 2018). Each head has a learnable weight `w_i` (a parameter of the model, trained
    by the trainer's optimizer and saved with it), and the combined loss is `sum_i w_i * L_i`. The weights
    get their gradient from the paper's balancing loss alone, `sum_i |G_i - mean(G) * r_i ** alpha|`,
    where `G_i = w_i * |grad of L_i on the shared parameter|` and `r_i` is head `i`'s loss relative to its
    first loss, divided by the mean of those ratios (a head whose loss falls slowly gets a larger target).
    Before each training batch the weights are scaled to add up to the number of heads.

    The gradient norms cost one backward pass per head in the batch, down to the shared parameter. Heads
    that a batch lacks take no part in it. Under DDP, the weights' gradients are averaged with the
    model's, so every worker keeps the same weights.

    Registered as a `LossWeighting` with name "gradnorm".

    # Parameters

    head_names : `Sequence[str]`
        Given by the model.
    alpha : `float`, optional (default = `1.5`)
        The strength of the pull towards equal training rates (the paper's `alpha`, non-negative).
    shared_parameter : `str`, optional (default = `None`)
        The name of the model parameter (as `model.named_parameters()` gives it) of the last shared
        layer, on which the gradient norms are measured; `None` for the backbone's last parameter of
        two or more dimensions (a weight matrix).
    """

    reports_weights = True
    initial_losses: torch.Tensor

    def __init__(self, head_names: Sequence[str], alpha: float = 1.5, shared_parameter: Optional[str] = None) -> None:
        super().__init__(head_names)
        if not (0 <= alpha < math.inf):
            raise ConfigurationError(f"gradnorm loss weighting needs a non-negative, finite alpha, got {alpha}.")
        self.alpha = float(alpha)
        self.shared_parameter_name = shared_parameter
        self.weights = torch.nn.Parameter(torch.ones(len(self.head_names)))
        self.register_buffer("initial_losses", torch.full((len(self.head_names),), float("nan")))
        self._position = {head: index for index, head in enumerate(self.head_names)}
        # In a list, not an attribute: the parameter belongs to the model, not to this module.
        self._shared_parameter: List[torch.nn.Parameter] = []

    def bind(self, model: torch.nn.Module) -> None:
        parameters = dict(model.named_parameters())
        name = self.shared_parameter_name
        if name is None:
            backbone = [
                key for key, parameter in parameters.items() if key.startswith("_backbone.") and parameter.dim() > 1
            ]
            if not backbone:
                raise ConfigurationError(
                    "gradnorm loss weighting: the backbone has no weight matrix; give shared_parameter."
                )
            name = backbone[-1]
        if name not in parameters:
            raise ConfigurationError(
                f"gradnorm loss weighting: shared_parameter {name!r} is not a parameter of the model; the "
                f"backbone's: {[key for key in parameters if key.startswith('_backbone.')]}."
            )
        self._shared_parameter = [parameters[name]]

    def forward(self, head_losses: Mapping[str, torch.Tensor]) -> torch.Tensor:  # type: ignore
        if not (self.training and torch.is_grad_enabled()):
            return super().forward(head_losses)
        with torch.no_grad():  # After the optimizer's step: back to weights that add up to the heads.
            self.weights.mul_(len(self.head_names) / self.weights.sum())
        loss = super().forward(head_losses)
        balancing = self._balancing_loss(head_losses)
        # The combined loss's value; the weights' gradient from the balancing loss only.
        return loss + (balancing - balancing.detach())

    def _balancing_loss(self, head_losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        positions = [self._position[head] for head in head_losses]
        losses = torch.stack(list(head_losses.values())).detach()
        with torch.no_grad():
            first = self.initial_losses[positions]
            self.initial_losses[positions] = torch.where(torch.isnan(first), losses, first)
        norms = torch.stack([self._gradient_norm(loss) for loss in head_losses.values()])
        gradient_norms = self.weights[positions] * norms
        ratios = losses / self.initial_losses[positions]
        targets = gradient_norms.mean().detach() * (ratios / ratios.mean()) ** self.alpha
        return _sum_in_order((gradient_norms - targets).abs())

    def _gradient_norm(self, loss: torch.Tensor) -> torch.Tensor:
        (gradient,) = torch.autograd.grad(loss, self._shared_parameter, retain_graph=True, allow_unused=True)
        return torch.zeros((), device=loss.device) if gradient is None else gradient.norm()

    def terms(self, head_losses: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        return {head: self.weights[self._position[head]].detach() * loss for head, loss in head_losses.items()}

    def current_weights(self) -> Dict[str, float]:
        return dict(zip(self.head_names, self.weights.tolist()))

    def running_state(self) -> List[torch.Tensor]:
        return [self.initial_losses]
