import logging
from typing import TYPE_CHECKING, Any, Collection, Dict, List, Optional, Union, overload

import torch
import torch.distributed as dist
from allennlp.common.checks import ConfigurationError
from allennlp.training.callbacks import TrainerCallback
from allennlp.training.callbacks.backward import OnBackwardException
from torch.nn.parallel import DistributedDataParallel

from allennlp_multitask.models.distributed import heads_run_by_any_worker
from allennlp_multitask.models.multitask import MultiTaskModel
from allennlp_multitask.training.callbacks.jacobian_aggregators import build_aggregator, gramian_weights
from allennlp_multitask.training.callbacks.representation_jacobian import HeadGradient, RepresentationJacobian
from allennlp_multitask.training.metrics import GradientConflicts

if TYPE_CHECKING:
    from allennlp.training.gradient_descent_trainer import GradientDescentTrainer

logger = logging.getLogger(__name__)

# What the rows of the Jacobian differentiate: the backbone's parameters, or its outputs.
LEVELS = ("parameters", "representation")


@TrainerCallback.register("jacobian_descent")
class JacobianDescentCallback(TrainerCallback):
    """
    Jacobian descent for a `MultiTaskModel` (TorchJD): instead of the gradient of the summed loss, the
    backbone gets an aggregation of the tasks' gradients (e.g. UPGrad, which never goes against any of
    them), while each head, and the loss weighting, get their ordinary gradients.

    At the `"parameters"` level (the default, exact), each head's term of the loss (its loss as the model's
    `loss_weights` or loss weighting weighs it) is one row of the Jacobian with respect to the backbone's
    trainable parameters, computed with TorchJD's
    `jac` as its `mtl_backward` does (each term's gradient on the backbone's outputs, then all rows back
    through the backbone at once), but with the heads' part in one pass over all terms, which may share
    the op that gathers their rows. The rows of a step are the heads that had a loss in its batches: the
    heads of a mixed batch (`task_heads`), and under gradient accumulation
    (`num_gradient_accumulation_steps`) the heads of all the step's batches, each head's row summed over
    its batches (and, like the loss, divided by the number of batches in the step). At the end of the
    step, before the trainer rescales or clips gradients, the aggregator turns the rows into the
    backbone's update, which is added to its gradient (that of a regularizer, if any). A step with a
    single head's row has nothing to aggregate and trains as plain training does (said once in the log).
    With the `"sum"` aggregator, training is plain training.

    At the `"representation"` level (Sener & Koltun's MGDA-UB, LibMTL's `rep_grad`), a head's row is its
    term's gradient with respect to the backbone's outputs that the heads read (every output, over the
    step's batches one after another), not its parameters: the aggregator weighs the rows from their
    Gramian (UPGrad, MGDA, DualProj and the other Gramian-based aggregators; sum, mean and random from
    their number; those that need the rows themselves, ConFIG, GradDrop, ExcessMTL and Nash-MTL, get
    them), and one backward pass through the backbone carries the combined gradient: about the cost of
    plain training rather than a pass per head. It is exact when the backbone's Jacobian maps the rows'
    conflicts as it finds them, e.g. heads that read the same instances; heads that read different
    instances of a mixed batch have orthogonal rows there (each touches only its instances' outputs), so
    their conflicts through the shared parameters go unseen and UPGrad adds them up as the sum does. The
    graphs of a step's batches are kept until the step's end.

    Under distributed training (AllenNLP's default DDP), the callback does DDP's gradient averaging
    itself: each step, the rows and the other gradients are averaged across workers in one all-reduce,
    so that every worker aggregates the same Jacobian and parameters stay identical. Workers must see
    the same number of batches (AllenNLP's early stop of a worker that runs out of batches mid-step is
    not supported).

    Metrics (training, per epoch, through the model's `get_metrics`): `gradient_conflict_share`, the share
    of steps with two or more task rows in which some pair conflicts (negative inner product), and
    `gradient_cosine_mean`, the mean cosine of every pair of task rows (see `GradientConflicts`); at the
    representation level, of the rows there, as `representation_gradient_conflict_share` and
    `representation_gradient_cosine_mean`. They are measured before aggregation, so `"sum"` gives them
    for plain training.

    Under mixed precision (the trainer's `use_amp`), the forward pass autocasts as in plain training. In
    bfloat16 nothing else changes. In float16 with the trainer's gradient scaler, the rows come from the
    scaled loss terms (as plain training's gradients do, so that they do not underflow), and are unscaled
    before aggregation; the gradients the step leaves are scaled, for the scaler to unscale, check and step
    or skip. A step whose rows are not finite is not aggregated: the backbone's gradients are then
    infinite, so that the scaler skips the step and lowers its scale, as it does in plain training.

    Needs the `jd` extra (`pip install "allennlp-multitask[jd]"`); CAGrad, FairGrad and Nash-MTL need the
    `jd-full` extra. Not for sharded models (FairScale), or with another callback that does the backward
    pass.

    Registered as a `TrainerCallback` with name "jacobian_descent".

    # Parameters

    serialization_dir : `str`
        Given by the trainer.
    aggregator : `Union[str, Dict[str, Any]]`, optional (default = `"upgrad"`)
        A TorchJD aggregator by name, alone (`"upgrad"`) or with its options (`{"type": "cagrad", "c": 0.5}`):
        `upgrad`, `aligned_mtl`, `cagrad` (`c` required), `config`, `dualproj`, `excess_mtl`, `fairgrad`
        (`alpha` required), `graddrop`, `gradvac`, `imtl_g`, `mean`, `mgda`, `nash_mtl` (`n_tasks` required:
        every step must then have that many rows), `pcd`, `pcgrad`, `random` or `sum`. Lists become tensors
        (`pref_vector`). Rows come in the model's head order.
    parallel_chunk_size : `int`, optional (default = `None`)
        TorchJD's `parallel_chunk_size`, at the parameters level: how many rows go back through the backbone
        at once (`None`: all, with `torch.vmap`; `1`: one at a time, for modules `vmap` cannot handle).
    level : `str`, optional (default = `"parameters"`)
        What the rows differentiate: `"parameters"`, the backbone's parameters (exact), or `"representation"`,
        the backbone's outputs (one backward pass through the backbone).
    """

    def __init__(
        self,
        serialization_dir: str,
        aggregator: Union[str, Dict[str, Any]] = "upgrad",
        parallel_chunk_size: Optional[int] = None,
        level: str = "parameters",
    ) -> None:
        super().__init__(serialization_dir)
        if level not in LEVELS:
            raise ConfigurationError(f"jacobian_descent: level must be one of {list(LEVELS)}, got {level!r}.")
        self._level = level
        self._aggregator = build_aggregator(aggregator)
        if parallel_chunk_size is not None and parallel_chunk_size < 1:
            raise ConfigurationError(
                f"jacobian_descent: parallel_chunk_size must be a positive number of rows or null, got "
                f"{parallel_chunk_size}."
            )
        self._parallel_chunk_size = parallel_chunk_size
        self._conflicts = GradientConflicts("representation_" if level == "representation" else "")
        self._shared: List[torch.nn.Parameter] = []
        self._task_parameters: List[torch.nn.Parameter] = []
        self._parameters: List[torch.nn.Parameter] = []  # All the trainable ones, in the model's order.
        self._ddp: Optional[DistributedDataParallel] = None
        self._scaler: Optional[torch.amp.GradScaler] = None
        # The step so far: each head's row, summed over the step's batches, and how many batches.
        self._task_rows: Dict[str, torch.Tensor] = {}
        self._representation_rows = RepresentationJacobian()
        self._batches = 0
        self._said_single_task = False

    def on_start(self, trainer: "GradientDescentTrainer", is_primary: bool = True, **kwargs: Any) -> None:
        super().on_start(trainer, is_primary, **kwargs)
        model = trainer.model
        if not isinstance(model, MultiTaskModel):
            raise ConfigurationError(
                f"jacobian_descent needs a multitask model (type 'multitask'), not {type(model).__name__}."
            )
        if not model.include_backbone_outputs:
            raise ConfigurationError(
                "jacobian_descent differentiates the heads' losses through the backbone's outputs, which the "
                "model leaves out (include_backbone_outputs: false): train without that setting, and give it "
                "when predicting (-o '{\"model.include_backbone_outputs\": false}')."
            )
        self._scaler = trainer._scaler
        others = [
            type(callback).__name__
            for callback in trainer._callbacks
            if callback is not self and type(callback).on_backward is not TrainerCallback.on_backward
        ]
        if others:
            raise ConfigurationError(f"jacobian_descent does the backward pass, which callback(s) {others} do too.")
        self._shared = [parameter for parameter in model.backbone.parameters() if parameter.requires_grad]
        if not self._shared:
            raise ConfigurationError("jacobian_descent: the backbone has no trainable parameters to aggregate for.")
        shared = set(self._shared)
        self._task_parameters = [p for p in model.parameters() if p.requires_grad and p not in shared]
        self._parameters = [p for p in model.parameters() if p.requires_grad]
        self._ddp = self._take_over_gradient_averaging(trainer)
        model.record_head_inputs(self._level == "representation")
        if (
            self._ddp is not None
            and self._level == "representation"
            and gramian_weights(self._aggregator, torch.eye(2)) is None
        ):
            raise ConfigurationError(
                f"jacobian_descent: at the representation level under distributed training, each worker's rows "
                f"are on its own batches' outputs, and only their Gramian is shared: aggregator "
                f"{self._aggregator!r} needs the rows themselves. Choose a Gramian-based one (upgrad, mgda, "
                f"dualproj, ...) or level 'parameters'."
            )
        self._task_rows.clear()
        self._representation_rows.clear()
        self._batches = 0
        self._conflicts.reset()
        model.track_metric(self._conflicts)
        # AllenNLP calls `on_backward` for each batch, but has no hook at the end of a step's batches.
        # `rescale_gradients` is the first thing it does then, once per step, before clipping and the
        # optimizer: the step's update is finished just before it.
        finish_step, rescale_gradients = self._finish_step, trainer.rescale_gradients

        def finish_step_then_rescale_gradients() -> Optional[float]:
            finish_step(trainer)
            return rescale_gradients()

        trainer.rescale_gradients = finish_step_then_rescale_gradients  # type: ignore[method-assign]

    @staticmethod
    def _take_over_gradient_averaging(trainer: "GradientDescentTrainer") -> Optional[DistributedDataParallel]:
        """Under distributed training, keeps DDP from averaging gradients in the backward pass."""
        wrapped = trainer._ddp_wrapped_model
        if wrapped is None:
            return None
        if not isinstance(wrapped.model, DistributedDataParallel):
            raise ConfigurationError(
                f"jacobian_descent supports PyTorch's DistributedDataParallel (AllenNLP's default "
                f"ddp_accelerator), not {type(wrapped.model).__name__}."
            )
        # What `DistributedDataParallel.no_sync()` sets for the length of a `with` block, here for the
        # whole training: DDP then neither expects a backward pass nor all-reduces in one.
        wrapped.model.require_backward_grad_sync = False
        return wrapped.model

    def on_backward(
        self,
        trainer: "GradientDescentTrainer",
        batch_outputs: Dict[str, torch.Tensor],
        backward_called: bool,
        **kwargs: Any,
    ) -> bool:
        if backward_called:
            raise OnBackwardException("jacobian_descent computes the gradients itself.")
        model = trainer.model
        terms = {head: self._scaled(term) for head, term in model.loss_terms(batch_outputs).items()}
        if self._level == "representation":
            self._add_representation_rows(model, terms, batch_outputs)
        else:
            self._add_parameter_rows(model, terms, batch_outputs)
        regularization_penalty = batch_outputs.get("reg_loss")
        if regularization_penalty is not None:
            self._scaled(regularization_penalty).backward()
        self._batches += 1
        return True

    def _scaled(self, loss: torch.Tensor) -> torch.Tensor:
        """`loss` times the gradient scaler's scale (under float16 mixed precision), or as it is."""
        return loss if self._scaler is None else self._scaler.scale(loss)

    def _add_parameter_rows(
        self, model: MultiTaskModel, terms: Dict[str, torch.Tensor], batch_outputs: Dict[str, torch.Tensor]
    ) -> None:
        """Adds a batch's rows on the backbone's parameters, and gives the heads their ordinary gradients."""
        from torchjd.autojac import jac

        losses = list(terms.values())
        features = [
            output
            for output in model.backbone_outputs(batch_outputs).values()
            if isinstance(output, torch.Tensor) and output.requires_grad
        ]
        # Heads and loss weighting: the ordinary gradient of the loss (parameters it does not reach keep none).
        if self._task_parameters:
            torch.autograd.backward(torch.stack(losses).sum(), inputs=self._task_parameters, retain_graph=True)
        # Each term's gradient on the backbone's outputs, then back through the backbone. TorchJD's
        # `mtl_backward` would take the first step one task at a time, which frees the graph of the gather
        # the model shares between heads of a mixed batch before the second task.
        feature_jacobians = jac(losses, features, parallel_chunk_size=self._parallel_chunk_size)
        jacobians = jac(
            features, self._shared, jac_outputs=feature_jacobians, parallel_chunk_size=self._parallel_chunk_size
        )
        jacobian = torch.cat([parameter_jacobian.flatten(1) for parameter_jacobian in jacobians], dim=1)
        for head, row in zip(terms, jacobian):
            self._task_rows[head] = row + self._task_rows[head] if head in self._task_rows else row

    def _add_representation_rows(
        self, model: MultiTaskModel, terms: Dict[str, torch.Tensor], batch_outputs: Dict[str, torch.Tensor]
    ) -> None:
        """
        Adds a batch's rows on the backbone's outputs, and gives the heads their ordinary gradients, in one
        backward pass through the heads: it stops at each head's own view of the outputs it read (the
        model gives them: `record_head_inputs`), whose gradient is its own term's. (So each head's term
        must depend on the backbone's outputs through its head only, as every loss weighting's does.)
        """
        head_inputs = {head: inputs for head, inputs in model.take_head_inputs().items() if head in terms}
        read = [head_input.tensor for inputs in head_inputs.values() for head_input in inputs]
        # It stops at the heads' views, and frees the heads' graph only: the backbone's waits for the
        # step's end. Once the views go (with this call), so do the gathered rows they view.
        torch.autograd.backward(torch.stack(list(terms.values())).sum(), inputs=self._task_parameters + read)
        backbone_outputs = model.backbone_outputs(batch_outputs)
        gradients: Dict[str, List[HeadGradient]] = {
            head: [(view.output, view.rows, view.tensor.grad) for view in inputs if view.tensor.grad is not None]
            for head, inputs in head_inputs.items()
        }
        self._representation_rows.add(backbone_outputs, gradients)

    def _finish_step(self, trainer: "GradientDescentTrainer") -> None:
        """Averages the step's rows and gradients over its batches (and workers), and aggregates the rows."""
        from torchjd.aggregation import Sum

        if not self._batches:
            return
        parameters = self._parameters
        # The rows and gradients are scaled under a gradient scaler: the rows are unscaled for aggregation,
        # and the update is scaled again, as the gradients the scaler unscales.
        scale = 1.0 if self._scaler is None else self._scaler.get_scale()
        if self._batches > 1:
            for parameter in parameters:
                if parameter.grad is not None:
                    parameter.grad /= self._batches
        representation = self._representation_rows
        if self._level == "representation":
            heads = self._step_heads(trainer.model.active_heads, representation.heads)
            gramian = representation.gramian(heads)
            if self._ddp is not None:
                # The mean of the workers' Gramians is that of rows twice as long, each half as large.
                gramian = _average_across_workers(parameters=[], tensor=gramian) / dist.get_world_size()
            gramian = gramian / scale**2
        else:
            heads = self._step_heads(trainer.model.active_heads, self._task_rows)
            width = sum(parameter.numel() for parameter in self._shared)
            task_rows = [self._task_rows.get(head) for head in heads]
            jacobian = torch.stack([self._shared[0].new_zeros(width) if row is None else row for row in task_rows])
            jacobian = jacobian / self._batches
            self._task_rows.clear()
            if self._ddp is not None:
                jacobian = _average_across_workers(parameters, tensor=jacobian)
            jacobian = jacobian / scale
            gramian = jacobian @ jacobian.T
        self._batches = 0
        if self._scaler is not None and not bool(torch.isfinite(gramian).all()):
            representation.clear()
            for parameter in self._shared:
                parameter.grad = torch.full_like(parameter, float("inf"))
            return
        if len(heads) > 1:
            self._conflicts(gramian)
        else:
            self._say_single_task_once(heads[0])
        aggregator = self._aggregator if len(heads) > 1 else Sum()
        try:
            weights = gramian_weights(aggregator, gramian)
            combined = None
            if weights is None:
                rows = representation.rows(heads) / scale if self._level == "representation" else jacobian
                combined = aggregator(rows)
        except Exception as error:
            representation.clear()
            raise RuntimeError(
                f"jacobian_descent: aggregator {aggregator!r} failed on a step whose Jacobian has a row for "
                f"each of heads {heads}: {error}"
            ) from error
        if self._level == "representation":
            if combined is None:
                assert weights is not None  # combined is computed only where the aggregator has no weights
                representation.backward(heads, weights, self._shared)
            else:
                representation.backward_combined(combined * scale, self._shared)
            if self._ddp is not None:
                _average_across_workers(parameters)
            return
        update = (weights @ jacobian if combined is None else combined) * scale
        for parameter, part in zip(self._shared, update.split([p.numel() for p in self._shared])):
            if parameter.grad is None:
                parameter.grad = part.view_as(parameter).clone()
            else:
                parameter.grad += part.view_as(parameter)

    def _step_heads(self, heads: List[str], with_rows: Collection[str]) -> List[str]:
        """
        The step's heads, in the order of `heads`: those with rows here (a loss in a batch of the step), and
        under DDP those with rows on any worker (partial labels leave a head without a loss on one worker
        and with one on another), so that every worker aggregates rows of the same heads; a head without
        rows here has a zero row.
        """
        if self._ddp is None:
            return [head for head in heads if head in with_rows]
        return heads_run_by_any_worker(heads, with_rows)

    def _say_single_task_once(self, head: str) -> None:
        if not self._said_single_task:
            self._said_single_task = True
            logger.info(
                "jacobian_descent: a step had the loss of head '%s' only: nothing to aggregate, so it trains "
                "as plain training does (said once). A step sees several tasks in mixed batches (task_heads) "
                "or over the batches of a step (num_gradient_accumulation_steps).",
                head,
            )

    def on_end(
        self,
        trainer: "GradientDescentTrainer",
        metrics: Optional[Dict[str, Any]] = None,
        epoch: Optional[int] = None,
        is_primary: bool = True,
        **kwargs: Any,
    ) -> None:
        vars(trainer).pop("rescale_gradients", None)
        trainer.model.untrack_metric(self._conflicts)
        trainer.model.record_head_inputs(False)
        if self._ddp is not None:
            self._ddp.require_backward_grad_sync = True
            self._ddp = None


@overload
def _average_across_workers(parameters: List[torch.nn.Parameter], tensor: torch.Tensor) -> torch.Tensor: ...


@overload
def _average_across_workers(parameters: List[torch.nn.Parameter], tensor: None = None) -> None: ...


def _average_across_workers(
    parameters: List[torch.nn.Parameter], tensor: Optional[torch.Tensor] = None
) -> Optional[torch.Tensor]:
    """
    Averages the gradients of `parameters`, and `tensor` if given (the Jacobian, or its Gramian), across
    workers in one all-reduce, as DDP averages gradients (a parameter without a gradient counts as zero,
    and gets one); returns the average `tensor`.
    """
    gradients = [torch.zeros_like(p) if p.grad is None else p.grad for p in parameters]
    tensors = ([] if tensor is None else [tensor]) + gradients
    flat = torch.cat([part.flatten() for part in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    averages = flat.split([part.numel() for part in tensors])
    for parameter, gradient in zip(parameters, averages[len(tensors) - len(gradients) :]):
        parameter.grad = gradient.view_as(parameter)
    return None if tensor is None else averages[0].view_as(tensor)
