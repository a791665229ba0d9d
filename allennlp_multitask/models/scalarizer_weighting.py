"""
TorchJD's scalarizers (`torchjd.scalarization`) as loss weightings, by the names a configuration gives them.
TorchJD is an optional dependency (the `jd` extra): nothing here imports it until a weighting is built.
"""

import importlib
import inspect
from typing import Any, Callable, Dict, List, Mapping, Sequence

import torch
import torch.distributed as dist
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import is_distributed

from allennlp_multitask.common.extras import install_hint
from allennlp_multitask.models.loss_weighting import LossWeighting

# Configuration name -> class in `torchjd.scalarization`. TorchJD's `DWA` is left out: our `dwa` averages
# each head's loss over the batches that head ran on (TorchJD's over every call, with the losses of heads a
# batch lacked), and sums them over DDP workers.
SCALARIZERS: Dict[str, str] = {
    "constant": "Constant",
    "cosmos": "COSMOS",
    "famo": "FAMO",
    "geometric_mean": "GeometricMean",
    "imtl_l": "IMTLL",
    "mean": "Mean",
    "pbi": "PBI",
    "random": "Random",
    "stch": "STCH",
    "sum": "Sum",
    "uw": "UW",
}


class ScalarizerLossWeighting(LossWeighting):
    """
    A TorchJD scalarizer (`torchjd.scalarization`) as a loss weighting, registered under each name of
    `SCALARIZERS` (e.g. `{"type": "famo", "lr": 0.025}`); its options are the TorchJD class's
    constructor arguments but `shape` (one value per head). Options that TorchJD takes as tensors
    (`weights`, `reference`, `min_losses`) are given as a number per head, `{"head": 0.5, ...}`.

    The scalarizer gets the loss of every head, in the model's head order: a head that a batch lacks
    enters with its latest loss (1.0 before it has one), detached, so that it moves no model weight.
    Learnable parameters of the scalarizer (`uw`, `imtl_l`) are parameters of the model, which the
    trainer's optimizer trains and the checkpoints save; those that TorchJD learns itself (`famo`'s
    logits, after each optimizer step, from the losses of the step's batches recomputed on the same
    batches, each head's averaged over the batches under gradient accumulation) are saved too, with
    the state of FAMO's own optimizer. Under DDP, FAMO's update uses the losses averaged over
    the workers, so every worker keeps the same weights; `random`'s weights are worker 0's draw.

    A head's reported weight (`{head}_loss_weight`) and its term for Jacobian descent use the
    derivative of the combined loss with respect to that head's loss, at the latest losses (`random`:
    the weights drawn for the latest batch).

    # Parameters

    head_names : `Sequence[str]`
        Given by the model.
    **options : `Any`
        The TorchJD scalarizer's constructor arguments but `shape`, numbers per head as mappings.
    """

    reports_weights = True
    latest_losses: torch.Tensor
    drawn_weights: torch.Tensor
    scalarizer_class_name = ""  # Set by each registered subclass.

    def __init__(self, head_names: Sequence[str], **options: Any) -> None:
        super().__init__(head_names)
        name = self.registered_name()
        try:
            scalarization = importlib.import_module("torchjd.scalarization")
        except ImportError as error:
            raise ConfigurationError(
                f'loss weighting "{name}" needs TorchJD, which is not installed ({error}): {install_hint("jd")}'
            ) from error
        scalarizer_class = getattr(scalarization, self.scalarizer_class_name)
        parameters = inspect.signature(scalarizer_class).parameters
        configurable = [option for option in parameters if option != "shape"]
        unknown = sorted(set(options) - set(configurable))
        if unknown:
            raise ConfigurationError(
                f'loss weighting "{name}" has no option(s) {unknown}; its options: {configurable}.'
            )
        arguments = {
            option: self._per_head(name, option, value) if "Tensor" in str(parameters[option].annotation) else value
            for option, value in options.items()
        }
        if "shape" in parameters:
            arguments["shape"] = len(self.head_names)
        try:
            self.scalarizer = scalarizer_class(**arguments)
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f'loss weighting "{name}" with options {options}: {error}') from error
        self.register_buffer("latest_losses", torch.ones(len(self.head_names)))
        self.draws_weights = self.scalarizer_class_name == "Random"
        if self.draws_weights:  # Not saved: a new draw comes with each batch.
            self.register_buffer("drawn_weights", torch.full((len(self.head_names),), 1 / len(self.head_names)), False)
        self._position = {head: index for index, head in enumerate(self.head_names)}
        self.learns_after_step = hasattr(self.scalarizer, "update")
        if self.learns_after_step:
            # FAMO learns its logits with an Adam of its own, which it makes on its first update; made here,
            # its state is saved with the model. Out of the trainer's optimizer, and of DDP's gradient sync.
            learned = list(self.scalarizer.parameters())
            self.scalarizer._optimizer = torch.optim.Adam(
                learned, lr=self.scalarizer.lr, weight_decay=self.scalarizer.weight_decay
            )
            for parameter in learned:
                parameter.requires_grad_(False)

    @classmethod
    def registered_name(cls) -> str:
        return next(name for name, class_name in SCALARIZERS.items() if class_name == cls.scalarizer_class_name)

    def _per_head(self, name: str, option: str, value: Any) -> torch.Tensor:
        if not isinstance(value, Mapping) or set(value) != set(self.head_names):
            raise ConfigurationError(
                f'loss weighting "{name}": option {option} takes a number for every head, '
                f"{{head: number}} with heads {self.head_names}; got {value!r}."
            )
        return torch.tensor([float(value[head]) for head in self.head_names])

    @classmethod
    def from_params(  # type: ignore[override]
        cls, params: Params, head_names: Sequence[str], **_: Any
    ) -> "ScalarizerLossWeighting":
        return cls(head_names, **params.as_dict(quiet=True))

    def _values(self, head_losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Every head's loss, in head order: those in `head_losses` as they are, the others detached."""
        latest = self.latest_losses.to(next(iter(head_losses.values())).dtype)
        return torch.stack(
            [head_losses[head] if head in head_losses else latest[index] for index, head in enumerate(self.head_names)]
        )

    def forward(self, head_losses: Mapping[str, torch.Tensor]) -> torch.Tensor:  # type: ignore
        values = self._values(head_losses)
        self.latest_losses.copy_(values.detach())
        if self.draws_weights:
            # One draw per batch, which its terms and reported weights reuse; under DDP, worker 0's on every worker.
            weights = self._derivatives(values)
            if is_distributed():
                dist.broadcast(weights, src=0)
            self.drawn_weights.copy_(weights)
            return (weights * values).sum()
        return self.scalarizer(values)

    def _weights(self, values: torch.Tensor) -> torch.Tensor:
        """Each head's weight at the losses `values`: the last draw's for `random`."""
        return self.drawn_weights.to(values.dtype) if self.draws_weights else self._derivatives(values)

    def _derivatives(self, values: torch.Tensor) -> torch.Tensor:
        """The derivative of the combined loss with respect to each head's loss, at `values`."""
        values = values.detach().requires_grad_()
        with torch.enable_grad():
            (derivatives,) = torch.autograd.grad(self.scalarizer(values), values)
        return derivatives

    def terms(self, head_losses: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        weights = self._weights(self._values(head_losses))
        return {head: weights[self._position[head]] * loss for head, loss in head_losses.items()}

    def current_weights(self) -> Dict[str, float]:
        return dict(zip(self.head_names, self._weights(self.latest_losses).tolist()))

    def running_state(self) -> List[torch.Tensor]:
        return [self.latest_losses]

    def update_after_step(
        self, losses_before: Mapping[str, torch.Tensor], losses_after: Mapping[str, torch.Tensor]
    ) -> None:
        # Heads without a loss in the step's batches enter both with their latest loss: no change.
        before, after = self._values(losses_before).detach(), self._values(losses_after).detach()
        if is_distributed():
            for losses in (before, after):
                dist.all_reduce(losses)
                losses /= dist.get_world_size()
        self.scalarizer._prev_losses = before
        learned = list(self.scalarizer.parameters())
        for parameter in learned:
            parameter.requires_grad_(True)
        try:
            self.scalarizer.update(after)
        finally:
            for parameter in learned:
                parameter.requires_grad_(False)

    def get_extra_state(self) -> Dict[str, Any]:
        return {"optimizer": self.scalarizer._optimizer.state_dict()} if self.learns_after_step else {}

    def set_extra_state(self, state: Dict[str, Any]) -> None:
        if "optimizer" in state:
            self.scalarizer._optimizer.load_state_dict(state["optimizer"])

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> "ScalarizerLossWeighting":
        super()._apply(fn, recurse)
        # The options TorchJD keeps as plain tensor attributes (weights, reference) follow the module.
        for attribute, value in list(vars(self.scalarizer).items()):
            if isinstance(value, torch.Tensor):
                setattr(self.scalarizer, attribute, fn(value))
        return self


def _register_scalarizers() -> None:
    for name, class_name in SCALARIZERS.items():
        weighting_class = type(
            f"{class_name}LossWeighting",
            (ScalarizerLossWeighting,),
            {
                "scalarizer_class_name": class_name,
                "__module__": __name__,
                "__doc__": f"TorchJD's `{class_name}` scalarizer (`torchjd.scalarization.{class_name}`) as a loss "
                f'weighting, registered as a `LossWeighting` with name "{name}".\n\n'
                + inspect.getdoc(ScalarizerLossWeighting).partition("\n\n")[2],  # type: ignore[union-attr]
            },
        )
        globals()[weighting_class.__name__] = weighting_class
        LossWeighting.register(name)(weighting_class)


_register_scalarizers()
