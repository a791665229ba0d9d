import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

import numpy
import torch
from allennlp.common import Lazy
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import is_distributed
from allennlp.data import Instance, Vocabulary
from allennlp.models import MultiTaskModel as AllenNlpMultiTaskModel
from allennlp.models.heads import Head
from allennlp.models.model import Model
from allennlp.modules import Backbone
from allennlp.nn import InitializerApplicator, util
from allennlp.training.metrics import Metric

from allennlp_multitask.common.mixed_precision import amp_dtype_named, autocast, check_autocast_supported, in_float32
from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.data.batch import Batch
from allennlp_multitask.data.worker_schedule import CheckedTasks
from allennlp_multitask.models.configuration import (
    build_task_heads,
    check_component_keys,
    check_head_names,
    check_model_keys,
)
from allennlp_multitask.models.distributed import (
    check_same_heads_on_every_worker,
    heads_run_by_any_worker,
    zero_touching,
)
from allennlp_multitask.models.head_inputs import HeadInput, own_backbone_inputs
from allennlp_multitask.models.loss_weighting import LossWeighting, StaticLossWeighting
from allennlp_multitask.models.routing import (
    ArgumentRouter,
    HeadRows,
    accepts_any_argument,
    get_forward_arguments,
    get_required_arguments,
    head_arguments,
    route_tasks,
)
from allennlp_multitask.models.state_snapshot import HeldBackUpdates, find_metrics

BACKBONE = "backbone"


def _allowed_arguments_of(module: torch.nn.Module, configured: Optional[Iterable[str]]) -> Optional[Set[str]]:
    """The configured argument names, else those of `forward`; `None` (all) for `forward(**kwargs)`."""
    if configured is not None:
        return set(configured)
    return None if accepts_any_argument(module) else get_forward_arguments(module)


def _batchable_groups(instances: List[Instance]) -> List[List[int]]:
    """
    The positions of `instances`, grouped by their field names and types (AllenNLP's `Batch` takes only
    instances alike in both), groups in order of first appearance.
    """
    groups: Dict[Tuple[Tuple[str, str], ...], List[int]] = {}
    for position, instance in enumerate(instances):
        kind = tuple(sorted((name, type(field).__name__) for name, field in instance.fields.items()))
        groups.setdefault(kind, []).append(position)
    return list(groups.values())


@replace_registration(Model, "multitask")
class MultiTaskModel(AllenNlpMultiTaskModel):
    """
    A `Backbone` that encodes the inputs once, and named `Heads` that each predict from the encoding of
    the instances of their task. A drop-in for AllenNLP's `MultiTaskModel` (same configuration keys,
    output keys, metric names and state-dict keys), without its bugs, and with several heads per task,
    switchable heads and pluggable loss weighting.

    Every instance carries a `task` `MetadataField` (AllenNLP's multitask dataset reader adds it). The
    backbone runs once on the whole batch; each head receives only the rows of the tasks it serves,
    sliced without changing the caller's inputs. Head outputs appear as `{head}_{key}`, and `loss` is
    the combination of the heads' losses.

    Distributed training (AllenNLP's `"distributed"` setting) needs no `find_unused_parameters`: heads
    without a loss on a worker's batch get a zero gradient there, and every worker reports the same
    heads' metrics in the same order. Workers must run the same heads on each batch (heads' metrics sum
    their counts across workers at each update); a batch on which they would not raises `ValueError`.
    That check asks the other workers (a collective) unless the batch comes from our multitask data
    loader with the tasks of every worker's batches checked for the epoch (`CheckedTasks`), and the
    metrics ask them only when they are reset (the end of an epoch): a training step adds no collective
    and, in routing, no read of a tensor to the host.

    Registered as a `Model` with name "multitask", replacing AllenNLP's registration.

    # Parameters

    vocab : `Vocabulary`
    backbone : `Backbone`
        Encodes the whole batch; its outputs are available to every head.
    heads : `Dict[str, Head]`
        The heads, by name.
    loss_weights : `Dict[str, float]`, optional (default = `1.0 for every head`)
        A fixed weight for some or all heads' losses; heads left out weigh 1.0.
    arg_name_mapping : `Dict[str, Dict[str, str]]`, optional (default = `identity`)
        Per component ("backbone" or a head name), renames available arguments before they are
        passed, e.g. `{"backbone": {"question": "text"}, "sentiment": {"sentiment": "label"}}`.
    allowed_arguments : `Dict[str, Set[str]]`, optional (default = `inferred`)
        Per component, the argument names its `forward` receives. Components left out get the
        parameters of their `forward`, or every argument when their `forward` takes `**kwargs`.
    initializer : `InitializerApplicator`, optional (default = `InitializerApplicator()`)
        Initialises the model's parameters.
    task_heads : `Dict[str, List[str]]`, optional (default = `each task to the head of its name`)
        Which heads serve each task, for instances that feed several heads (e.g.
        `{"conll": ["pos", "ner"]}`). Tasks left out are served by the head named like them.
    active_heads : `List[str]`, optional (default = `all heads`)
        The heads that run; others are skipped (see `set_active_heads`).
    loss_weighting : `Lazy[LossWeighting]`, optional (default = `static, from loss_weights`)
        How head losses combine: `static`, `uncertainty`, `dwa`, `gradnorm`, TorchJD's scalarizers
        (`famo`, `stch`, `uw`, ...: see the loss-weighting guide). Not together with `loss_weights`.
    include_backbone_outputs : `bool`, optional (default = `True`)
        Whether the outputs (and so predictions) hold the backbone's outputs (e.g. `encoded_text` and
        `encoded_text_mask`) besides the heads' outputs and the loss, as AllenNLP's model's do. They are
        large; `false` leaves them out (`allennlp predict ... -o '{"model.include_backbone_outputs": false}'`).
    inference_amp_dtype : `str`, optional (default = `None`)
        Mixed precision outside training: `"bfloat16"` or `"float16"` makes the forward pass of the model in
        evaluation mode (`allennlp evaluate`, `predict`, validation) autocast in that dtype on the device of
        its parameters, with its floating outputs returned in float32; `None` runs in float32. Give it when
        evaluating or predicting (`-o '{"model.inference_amp_dtype": "bfloat16"}'`) or in the configuration.
    """

    default_predictor = "multitask"

    def __init__(
        self,
        vocab: Vocabulary,
        backbone: Backbone,
        heads: Dict[str, Head],
        *,
        loss_weights: Optional[Dict[str, float]] = None,
        arg_name_mapping: Optional[Dict[str, Dict[str, str]]] = None,
        allowed_arguments: Optional[Dict[str, Set[str]]] = None,
        initializer: Optional[InitializerApplicator] = None,
        task_heads: Optional[Dict[str, List[str]]] = None,
        active_heads: Optional[List[str]] = None,
        loss_weighting: Optional[Lazy[LossWeighting]] = None,
        include_backbone_outputs: bool = True,
        inference_amp_dtype: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        check_model_keys(kwargs, MultiTaskModel.__init__, Model.__init__)
        Model.__init__(self, vocab, **kwargs)
        if not heads:
            raise ConfigurationError("MultiTaskModel needs at least one head.")
        self._backbone = backbone
        self._include_backbone_outputs = include_backbone_outputs
        self._inference_amp_dtype = (
            None
            if inference_amp_dtype is None
            else amp_dtype_named(inference_amp_dtype, "MultiTaskModel's inference_amp_dtype")
        )
        self._heads = torch.nn.ModuleDict(heads)
        self._heads_called: Set[str] = set()
        self._heads_run: Set[str] = set()
        self._backbone_output_names: Tuple[str, ...] = ()
        self._head_inputs: Optional[Dict[str, List[HeadInput]]] = None
        self._tracked_metrics: List[Metric] = []
        self._head_metrics = {name: find_metrics(head) for name, head in heads.items()}
        # Each head's output keys with its `{head}_` prefix, made once rather than at every batch.
        self._output_names: Dict[str, Dict[str, str]] = {name: {} for name in heads}
        head_names = list(heads)
        components = [BACKBONE, *head_names]
        arg_name_mapping = dict(arg_name_mapping or {})
        allowed_arguments = dict(allowed_arguments or {})
        check_component_keys("arg_name_mapping", arg_name_mapping, components)
        check_component_keys("allowed_arguments", allowed_arguments, components)
        self._routers = {
            name: ArgumentRouter(
                component=name,
                allowed=_allowed_arguments_of(module, allowed_arguments.get(name)),
                required=get_required_arguments(module),
                name_mapping=arg_name_mapping.get(name, {}),
            )
            for name, module in [(BACKBONE, backbone), *heads.items()]
        }
        self._task_heads = build_task_heads(head_names, task_heads or {})
        self._active_heads: List[str] = head_names
        self.set_active_heads(head_names if active_heads is None else active_heads)
        if loss_weighting is None:
            self._loss_weighting: LossWeighting = StaticLossWeighting(head_names, loss_weights)
        elif loss_weights:
            raise ConfigurationError(
                "MultiTaskModel takes loss_weights or loss_weighting, not both; give static weights as "
                '{"loss_weighting": {"type": "static", "weights": {...}}} or drop loss_weights.'
            )
        else:
            self._loss_weighting = loss_weighting.construct(head_names=head_names)
        # The last training batch, kept for a loss weighting that learns from its losses after the step.
        self._batch_before_step: Optional[Dict[str, Any]] = None
        self._losses_after_step: Optional[Dict[str, torch.Tensor]] = None
        (initializer or InitializerApplicator())(self)
        self._loss_weighting.bind(self)

    @property
    def task_heads(self) -> Dict[str, List[str]]:
        """The heads that serve each task, by task (every head serves the task of its name)."""
        return {task: list(heads) for task, heads in self._task_heads.items()}

    @property
    def active_heads(self) -> List[str]:
        """The heads that run, in the model's head order."""
        return list(self._active_heads)

    def set_active_heads(self, heads: Iterable[str]) -> None:
        """
        Runs only `heads` from now on (e.g. to skip an auxiliary head at evaluation or prediction).
        Raises `ConfigurationError` for a name that is not a head.
        """
        wanted = list(heads)
        check_head_names("active_heads", wanted, list(self._heads))
        self._active_heads = [head for head in self._heads if head in wanted]
        # Single-task batches (most batches) route alike: by task and batch size, once per active heads.
        self._single_task_routes: Dict[Tuple[str, int], HeadRows] = {}

    def route(self, tasks: List[str]) -> HeadRows:
        """
        The rows of a batch with these per-instance `tasks` that each active head receives. Single-task
        batches of one size share what it returns.
        """
        single_task = bool(tasks) and tasks.count(tasks[0]) == len(tasks)
        if single_task:
            head_rows = self._single_task_routes.get((tasks[0], len(tasks)))
            if head_rows is not None:
                return head_rows
        head_rows = HeadRows(route_tasks(tasks, self._task_heads, self._active_heads), len(tasks))
        if single_task:
            self._single_task_routes[(tasks[0], len(tasks))] = head_rows
        return head_rows

    def forward(self, **kwargs: Any) -> Dict[str, torch.Tensor]:  # type: ignore
        if self.training or self._inference_amp_dtype is None:
            return self._forward(**kwargs)
        device = next(self.parameters()).device
        check_autocast_supported(device, self._inference_amp_dtype, "MultiTaskModel's inference_amp_dtype")
        with autocast(device, self._inference_amp_dtype):
            outputs = self._forward(**kwargs)
        return in_float32(outputs)

    def _forward(self, **kwargs: Any) -> Dict[str, torch.Tensor]:
        tasks = kwargs.get("task")
        if tasks is None:
            raise ValueError(
                "Instances for multitask training need a MetadataField named 'task' naming their task "
                f"(AllenNLP's multitask dataset reader adds it); this batch has only {sorted(kwargs)}."
            )
        if len(tasks) == 0:
            raise ValueError("MultiTaskModel got an empty batch (no instances in its 'task' field).")
        self._update_weighting_after_step()
        head_rows = self.route(tasks)
        distributed = is_distributed()
        if distributed and not isinstance(tasks, CheckedTasks):
            check_same_heads_on_every_worker(list(self._heads), head_rows.heads)
        backbone_outputs = self._backbone(**self._routers[BACKBONE].select(kwargs))
        self._check_batch_first(backbone_outputs, len(tasks))
        self._backbone_output_names = tuple(backbone_outputs)
        available = {**backbone_outputs, **kwargs}
        # Every head's arguments are checked before any head runs (and updates its metrics).
        keys = tuple(available)
        head_plans = {head: self._routers[head].plan(keys) for head in head_rows.heads}
        arguments = head_arguments(head_rows, head_plans, available)
        if self._head_inputs is not None:
            self._head_inputs = own_backbone_inputs(head_rows, head_plans, arguments, backbone_outputs, available)
        # What only shows once heads ran (a bad loss, a head's own error) must leave their metrics as they
        # were: the heads' metric updates are held back until everything passed.
        held = HeldBackUpdates(
            [metric for head in arguments for metric in self._head_metrics[head]],
            self._loss_weighting.running_state(),
        )
        try:
            with held:
                outputs = self._run_heads(arguments, backbone_outputs, distributed)
        except BaseException:
            held.discard()
            raise
        if self._losses_after_step is not None:
            held.discard()  # Losses recomputed for the loss weighting: the metrics counted this batch already.
            return outputs
        held.release()
        self._heads_run.update(head_plans)
        if self._loss_weighting.learns_after_step and self.training and torch.is_grad_enabled():
            self._batch_before_step = kwargs
        return outputs

    def _update_weighting_after_step(self) -> None:
        """
        Gives a loss weighting that learns from the change in the losses over an optimizer step (FAMO) the
        losses of the last training batch, recomputed now that the step was taken; the heads' metrics stay
        as they were.
        """
        batch, self._batch_before_step = self._batch_before_step, None
        if batch is None:
            return
        losses: Dict[str, torch.Tensor] = {}
        self._losses_after_step = losses
        try:
            with torch.no_grad():
                self.forward(**batch)
        finally:
            self._losses_after_step = None
        self._loss_weighting.update_after_step(losses)

    def _run_heads(
        self,
        arguments: Dict[str, Dict[str, Any]],
        backbone_outputs: Mapping[str, Any],
        distributed: bool,
    ) -> Dict[str, Any]:
        """
        Runs each head on its `arguments` (by head; each head's are let go as it runs), and combines
        the losses.
        """
        outputs: Dict[str, Any] = dict(backbone_outputs) if self._include_backbone_outputs else {}
        head_losses: Dict[str, torch.Tensor] = {}
        heads = self._heads
        for head in list(arguments):
            head_outputs = heads[head](**arguments.pop(head))
            output_names = self._output_names[head]
            for key, value in head_outputs.items():
                name = output_names.get(key)
                if name is None:
                    name = output_names[key] = f"{head}_{key}"
                outputs[name] = value
            if "loss" in head_outputs:
                loss = head_outputs["loss"]
                if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                    raise self._not_a_scalar_loss(head, loss)
                head_losses[head] = loss
        if head_losses and self._losses_after_step is not None:
            self._losses_after_step.update(head_losses)  # Recomputed for the loss weighting only.
        elif head_losses:
            loss = self._loss_weighting(head_losses)
            self._check_finite(loss, head_losses)
            if distributed and self.training and torch.is_grad_enabled():
                idle_heads = [module for head, module in self._heads.items() if head not in head_losses]
                loss = loss + zero_touching(loss, idle_heads)
            self._heads_called.update(head_losses)
            outputs["loss"] = loss
        return outputs

    @staticmethod
    def _check_batch_first(backbone_outputs: Mapping[str, Any], batch_size: int) -> None:
        for key, value in backbone_outputs.items():
            if isinstance(value, torch.Tensor) and (value.dim() == 0 or value.size(0) != batch_size):
                raise ValueError(
                    f"Backbone output '{key}' has shape {tuple(value.shape)}, but outputs must be "
                    f"batch-first (first dimension {batch_size}) so that heads can get their rows."
                )

    def no_loss_error(self, inputs: Mapping[str, Any]) -> ValueError:
        """
        The error for a training batch, `inputs`, on which `forward` (just called on it) computed no loss:
        it names the batch's tasks and the arguments each head got. Our `gradient_descent` trainer raises
        it where AllenNLP's would only say that the outputs have no "loss" key; `forward` itself returns
        the outputs without a loss in any mode, as AllenNLP's model does.
        """
        tasks = inputs["task"]
        # The inputs the heads chose from in `forward`: the backbone's outputs, then the batch's.
        keys = tuple(dict.fromkeys([*self._backbone_output_names, *inputs]))
        arguments = {
            head: sorted(name for _, name in self._routers[head].plan(keys)) for head in self.route(tasks).heads
        }
        return ValueError(
            f"No head computed a loss on a training batch of task(s) {sorted(set(tasks))}; the heads got "
            f"only these arguments (after arg_name_mapping): {arguments}. Training instances need their "
            "labels: check each task's dataset reader (e.g. labeled_text_json's label_key) and arg_name_mapping."
        )

    @staticmethod
    def _not_a_scalar_loss(head: str, loss: Any) -> ValueError:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        return ValueError(f"Head '{head}' returned a loss of shape {shape}; a loss must be a scalar tensor.")

    @staticmethod
    def _check_finite(loss: torch.Tensor, head_losses: Mapping[str, torch.Tensor]) -> None:
        # One check of the combined loss (AllenNLP's trainer checks it at this point too); the heads'
        # losses are looked at only to name the culprit. `item()` costs a fraction of an `isfinite` op.
        if not math.isfinite(loss.item()):
            culprits = [head for head, value in head_losses.items() if not bool(torch.isfinite(value))]
            raise ValueError(
                f"Head(s) {culprits or list(head_losses)} returned a non-finite loss "
                f"(losses: { {head: float(value.detach()) for head, value in head_losses.items()} })."
            )

    @property
    def include_backbone_outputs(self) -> bool:
        """Whether `forward`'s outputs hold the backbone's outputs besides the heads' (a constructor option)."""
        return self._include_backbone_outputs

    @include_backbone_outputs.setter
    def include_backbone_outputs(self, include: bool) -> None:
        """Sets it for the forward passes to come (e.g. `allennlp serve` per batch, as its requests ask)."""
        self._include_backbone_outputs = include

    @property
    def backbone(self) -> Backbone:
        """The backbone, whose parameters every head shares."""
        return self._backbone

    def record_head_inputs(self, record: bool) -> None:
        """
        Whether `forward` gives each head its own view of the backbone's outputs it reads and keeps them (see
        `take_head_inputs`) until they are taken or the next `forward`; off by default, as it holds on to
        the tensors.
        """
        self._head_inputs = {} if record else None

    def take_head_inputs(self) -> Dict[str, List[HeadInput]]:
        """
        What each head of the last `forward` read of the backbone's outputs that require a gradient, by head
        (`record_head_inputs` must be on): the tensors its forward took, and which output's rows they are.
        The model lets go of them (a second call, before the next `forward`, returns nothing), so that they
        live no longer than their taker keeps them.
        """
        if self._head_inputs is None:
            raise RuntimeError(
                "MultiTaskModel.take_head_inputs() needs record_head_inputs(True) before the forward pass."
            )
        taken, self._head_inputs = self._head_inputs, {}
        return taken

    def backbone_outputs(self, outputs: Mapping[str, Any]) -> Dict[str, Any]:
        """The backbone's outputs among `outputs`, the outputs of the model's last `forward`."""
        return {name: outputs[name] for name in self._backbone_output_names if name in outputs}

    def loss_terms(self, outputs: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """
        Each head's term of `outputs["loss"]` (its `{head}_loss` as the loss weighting weighs it), by head
        in the model's order, from the outputs of `forward`; the terms add up to the loss. For training
        that treats the heads' losses apart (e.g. the `jacobian_descent` trainer callback).
        """
        head_losses = {
            head: outputs[f"{head}_loss"]
            for head in self._heads
            if f"{head}_loss" in outputs and self._head_of_output(f"{head}_loss") == head
        }
        return self._loss_weighting.terms(head_losses)

    def track_metric(self, metric: Metric) -> None:
        """
        Reports what `metric.get_metric(reset)` returns (a dict of named values) in `get_metrics`, next
        to the heads' metrics, until `untrack_metric`: e.g. statistics a training callback collects.
        """
        self._tracked_metrics.append(metric)

    def untrack_metric(self, metric: Metric) -> None:
        """Stops reporting `metric`, which `track_metric` added."""
        self._tracked_metrics.remove(metric)

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        if reset:
            self._update_weighting_after_step()  # The epoch's last step, before its weights are reported.
        metrics: Dict[str, float] = {}
        for head in self._heads_to_report(reset):
            for key, value in self._heads[head].get_metrics(reset).items():
                metrics[f"{head}_{key}"] = value
        for metric in self._tracked_metrics:
            metrics.update(metric.get_metric(reset))
        if self._loss_weighting.reports_weights:
            for head, weight in self._loss_weighting.current_weights().items():
                metrics[f"{head}_loss_weight"] = weight
        if reset:
            self._heads_called.clear()
            self._heads_run.clear()
            self._loss_weighting.end_of_epoch()
        return metrics

    def _heads_to_report(self, reset: bool) -> List[str]:
        """
        The heads that computed a loss since the last reset, in the model's head order; under distributed
        training, those of any worker when the metrics are `reset` (one collective, at the end of an
        epoch), else (a progress report after each batch) those that ran: the same on every worker, which
        run the same heads on each batch, so no collective.
        """
        if not is_distributed():
            return [head for head in self._heads if head in self._heads_called]
        if reset:
            return heads_run_by_any_worker(list(self._heads), self._heads_called)
        return [head for head in self._heads if head in self._heads_run]

    def _head_of_output(self, key: str) -> Optional[str]:
        """The head whose `{head}_` prefix `key` has; the longest such name wins."""
        owners = [head for head in self._heads if key.startswith(f"{head}_")]
        return max(owners, key=len) if owners else None

    def make_output_human_readable(self, output_dict: Dict[str, Any]) -> Dict[str, Any]:
        if self._include_backbone_outputs:
            output_dict = self._backbone.make_output_human_readable(output_dict)
        head_outputs: Dict[str, Dict[str, Any]] = {}
        for key, value in output_dict.items():
            head = self._head_of_output(key)
            if head is not None:
                head_outputs.setdefault(head, {})[key[len(head) + 1 :]] = value
        for head, outputs in head_outputs.items():
            for key, value in self._heads[head].make_output_human_readable(outputs).items():
                output_dict[f"{head}_{key}"] = value
        return output_dict

    def forward_on_instances(self, instances: List[Instance]) -> List[Dict[str, numpy.ndarray]]:
        """
        Returns one output per instance, in input order: the backbone's outputs (unless
        `include_backbone_outputs` is false), and the `{head}_` outputs of each active head that served
        the instance. Instances with the same field names and types run as one batch (the backbone
        once, each head on its own rows), whatever their tasks; instances of other fields, which
        AllenNLP cannot batch with them, run as a batch of their own.
        """
        outputs: List[Dict[str, numpy.ndarray]] = [{} for _ in instances]
        for positions in _batchable_groups(instances):
            group_outputs = self._forward_on_batch([instances[position] for position in positions])
            for position, output in zip(positions, group_outputs):
                outputs[position] = output
        return outputs

    def _forward_on_batch(self, instances: List[Instance]) -> List[Dict[str, numpy.ndarray]]:
        """`forward_on_instances` for instances that make one `Batch`."""
        with torch.no_grad():
            batch = Batch(instances)
            batch.index_instances(self.vocab)
            model_input = util.move_to_device(batch.as_tensor_dict(), self._get_prediction_device())
            outputs = self.make_output_human_readable(self(**model_input))
            rows_of_head = route_tasks(model_input["task"], self._task_heads, self._active_heads)
            separated: List[Dict[str, Any]] = [{} for _ in instances]
            for name, output in outputs.items():
                head = self._head_of_output(name)
                rows = rows_of_head.get(head, []) if head else list(range(len(instances)))
                if isinstance(output, torch.Tensor):
                    output = output.unsqueeze(0) if output.dim() == 0 else output
                    output = output.detach().cpu().numpy()
                if len(output) != len(rows):
                    self._maybe_warn_for_unseparable_batches(name)
                    continue
                for row, value in zip(rows, output):
                    separated[row][name] = value
            return separated
