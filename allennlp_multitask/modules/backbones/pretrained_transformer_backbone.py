from typing import Any, Dict, List, Optional, Tuple

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import is_distributed
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.modules import Backbone
from allennlp.modules.backbones import PretrainedTransformerBackbone as AllenNlpPretrainedTransformerBackbone

from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.modules.compilation import compile_in_place
from allennlp_multitask.modules.gradient_checkpointing import enable_gradient_checkpointing
from allennlp_multitask.modules.peft import TaskAdapters, adapter_names, add_adapters


@replace_registration(Backbone, "pretrained_transformer")
class PretrainedTransformerBackbone(AllenNlpPretrainedTransformerBackbone):
    """
    AllenNLP's `pretrained_transformer` backbone, which can also fine-tune the transformer with PEFT: a
    `peft` block (`{"type": "lora", "r": 8, ...}`, see `allennlp_multitask.modules.peft`) adds adapters to
    the frozen transformer, and only they (and the heads) train. Without `peft`, it is AllenNLP's backbone.

    With `task_adapters`, each task has its own adapters (one per task, per group of tasks, a shared one
    besides, ...), which the multitask model's `task` metadata selects: a batch of one task runs with its
    task's adapters active; a batch of several tasks runs the transformer once for each set of adapters
    that its tasks use, on those tasks' rows, in training as in prediction. (PEFT's own mixed-adapter
    batches, `adapter_names=`, run in inference only, and one adapter per row.) Under distributed training,
    adapters that a batch does not use get a zero gradient, so DDP needs no `find_unused_parameters`.

    Registered as a `Backbone` with name "pretrained_transformer", replacing AllenNLP's registration.

    # Parameters

    vocab : `Vocabulary`
    model_name : `str`
        As for AllenNLP's backbone, like all other arguments but these:
    peft : `Dict[str, Any]`, optional (default = `None`)
        PEFT's configuration of the adapters, by method: `{"type": "lora", "r": 8, "lora_alpha": 16,
        "lora_dropout": 0.1, "target_modules": ["query", "value"]}`. The transformer's own weights are then
        frozen, whatever `train_parameters` says.
    task_adapters : `Dict[str, List[str]]`, optional (default = `one adapter, "default", for every task`)
        The names of the adapters that serve each task, all built from `peft` and applied together, e.g.
        `{"sentiment": ["shared", "sentiment"], "topic": ["shared", "topic"]}`. Every task of the data needs
        an entry. Only with `peft`.
    gradient_checkpointing : `bool`, optional (default = `False`)
        Recomputes the transformer's activations in the backward pass instead of keeping them: less memory
        for activations (long sequences, large batches), about a third more compute. With `peft` too.
    compile : `bool`, optional (default = `False`)
        Compiles the transformer (with its adapters, under `peft`) with `torch.compile`, in place: its state
        dict keeps its keys, so archives load compiled or not. The first batch, and the first with a new
        length, compile (a minute or more for a BERT-base on the CPU), later ones run the compiled code. The
        heads and the routing of batches to them stay uncompiled. With `task_adapters`, each set of adapters
        compiles once. Where the transformer's layers are most of a step's time (a GPU, large batches), it
        runs faster; the model's outputs stay those of the uncompiled model up to rounding.
    compile_options : `Dict[str, Any]`, optional (default = `None`)
        With `compile`: keyword arguments of `torch.compile`, e.g. `{"mode": "max-autotune"}`,
        `{"dynamic": true}` or `{"backend": "aot_eager"}` (no code generation: quick, for checking a config).
        Options it refuses fail when the backbone is built.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        model_name: str,
        *,
        peft: Optional[Dict[str, Any]] = None,
        task_adapters: Optional[Dict[str, List[str]]] = None,
        gradient_checkpointing: bool = False,
        compile: bool = False,
        compile_options: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        if compile_options is not None and not compile:
            raise ConfigurationError('pretrained_transformer backbone: compile_options needs "compile": true.')
        super().__init__(vocab, model_name, **kwargs)
        if gradient_checkpointing:
            enable_gradient_checkpointing(self._embedder.transformer_model)
        self._task_adapters: Optional[TaskAdapters] = None
        if peft is None and task_adapters is not None:
            raise ConfigurationError("pretrained_transformer backbone: task_adapters needs a peft block.")
        if peft is not None:
            adapters = adapter_names(task_adapters, "pretrained_transformer backbone's task_adapters")
            self._embedder.transformer_model = add_adapters(
                self._embedder.transformer_model, peft, adapters, "pretrained_transformer backbone's peft"
            )
        if task_adapters is not None:
            self._task_adapters = TaskAdapters(self._embedder.transformer_model, task_adapters)
        if compile:
            compile_in_place(
                self._embedder.transformer_model, compile_options, "pretrained_transformer backbone's compile_options"
            )

    @property
    def task_adapters(self) -> Optional[Dict[str, List[str]]]:
        """The adapters that serve each task, by task; `None` without `task_adapters`."""
        return None if self._task_adapters is None else self._task_adapters.task_adapters

    def forward(  # type: ignore
        self, text: TextFieldTensors, task: Optional[List[str]] = None
    ) -> Dict[str, torch.Tensor]:
        """
        AllenNLP's backbone's encoding of `text`; with `task_adapters`, under the adapters of each instance's
        `task` (the multitask model's `task` metadata).
        """
        if self._task_adapters is None:
            return super().forward(text)
        if task is None:
            raise ValueError("pretrained_transformer backbone: task_adapters needs each instance's task ('task').")
        rows_of_adapters = self._task_adapters.rows_of_adapters(task)
        if len(rows_of_adapters) == 1:
            self._task_adapters.activate(next(iter(rows_of_adapters)))
            outputs = super().forward(text)
        else:
            outputs = self._forward_by_adapters(text, rows_of_adapters)
        if is_distributed() and self.training and torch.is_grad_enabled():
            encoded = outputs["encoded_text"]
            outputs["encoded_text"] = encoded + self._task_adapters.zero_touching_idle(encoded, list(rows_of_adapters))
        return outputs

    def _forward_by_adapters(
        self, text: TextFieldTensors, rows_of_adapters: Dict[Tuple[str, ...], List[int]]
    ) -> Dict[str, torch.Tensor]:
        """The encoding of a batch whose rows need different adapters: each set of adapters on its rows."""
        assert self._task_adapters is not None
        device = next(iter(next(iter(text.values())).values())).device
        parts = []
        for adapters, rows in rows_of_adapters.items():
            index = torch.tensor(rows, device=device)
            self._task_adapters.activate(adapters)
            part_text = {
                indexer: {key: tensor.index_select(0, index) for key, tensor in tensors.items()}
                for indexer, tensors in text.items()
            }
            parts.append(super().forward(part_text))
        # The parts' rows, one after another, back in the batch's order.
        order = torch.tensor([row for rows in rows_of_adapters.values() for row in rows], device=device)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=device)
        return {key: torch.cat([part[key] for part in parts]).index_select(0, inverse) for key in parts[0]}
