"""
Parameter-efficient fine-tuning with PEFT of the transformer in AllenNLP's `pretrained_transformer`
backbone and embedders: what their `peft` block builds, and the adapters it adds.

A `peft` block is one of PEFT's configurations, named by its method: `{"type": "lora", "r": 8, ...}`, whose
other keys are the fields of PEFT's configuration of that method (`LoraConfig`'s `r`, `lora_alpha`,
`lora_dropout`, `target_modules`, ...). Without `target_modules`, PEFT's own default for the transformer's
architecture applies (BERT's `query` and `value`, for example). Every method that adapts the transformer's
layers applies (`lora`, `ia3`, `loha`, `lokr`, `oft`, `boft`, `vera`, ...); those that change its inputs
instead (prompt learning: `prompt_tuning`, `prefix_tuning`, `p_tuning`) do not.

PEFT is an optional dependency (the `peft` extra): nothing here imports it until it is needed (a `peft`
block is built, or an archive's adapters are merged or exported).
"""

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from allennlp.common.checks import ConfigurationError

from allennlp_multitask.common.extras import install_hint
from allennlp_multitask.models.distributed import zero_touching_parameters

if TYPE_CHECKING:
    from peft import PeftConfig, PeftModel

# The adapter's name when all tasks share one, as PEFT names it (`PeftModel.from_pretrained` loads it by default).
SHARED_ADAPTER = "default"


def build_peft_config(peft: Mapping[str, Any], argument: str) -> "PeftConfig":
    """
    PEFT's configuration that the `peft` block `peft` gives, e.g. `{"type": "lora", "r": 8}`. Raises
    `ConfigurationError`, naming `argument` (where the block is), for a method that PEFT does not have or
    that does not adapt layers, a field that the method's configuration refuses, and a missing `peft` extra.
    """
    try:
        from peft import PromptLearningConfig
        from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
    except ImportError as error:
        raise ConfigurationError(
            f"{argument} needs PEFT, which is not installed ({error}): {install_hint('peft')}"
        ) from error
    methods = {
        str(peft_type.value).lower(): config_class
        for peft_type, config_class in PEFT_TYPE_TO_CONFIG_MAPPING.items()
        if not issubclass(config_class, PromptLearningConfig)
    }
    options = dict(peft)
    method = options.pop("type", None)
    if method not in methods:
        raise ConfigurationError(
            f"{argument} must name one of PEFT's methods that adapt a transformer's layers as \"type\" "
            f"({sorted(methods)}), got {method!r}."
        )
    try:
        return methods[method](**options)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f'{argument} ("{method}"): {error}') from error


def adapter_names(task_adapters: Optional[Mapping[str, Sequence[str]]], argument: str) -> List[str]:
    """
    The adapters that `task_adapters` (the adapters of each task) names, in order of first mention; the
    shared adapter without it. Raises `ConfigurationError`, naming `argument`, for an entry that is not a
    non-empty list of names.
    """
    if task_adapters is None:
        return [SHARED_ADAPTER]
    for task, adapters in task_adapters.items():
        if isinstance(adapters, str) or not adapters:
            raise ConfigurationError(f"{argument}['{task}'] must be a non-empty list of adapter names: {adapters!r}.")
        if len(adapters) > 1 and all(len(adapter) == 1 for adapter in adapters):
            # `from_params` splits a string given where a list belongs into its characters.
            raise ConfigurationError(
                f"{argument}['{task}'] is {adapters}: a string where a list belongs? Write [\"{''.join(adapters)}\"]."
            )
    return list(dict.fromkeys(adapter for adapters in task_adapters.values() for adapter in adapters))


def add_adapters(
    transformer: torch.nn.Module, peft: Mapping[str, Any], adapters: Sequence[str], argument: str
) -> "PeftModel":
    """
    `transformer` (changed in place) as a `PeftModel` with the named `adapters`, each built from the `peft`
    block: their parameters train, the transformer's are frozen, and all adapters are active. Raises
    `ConfigurationError`, naming `argument`, for a block that PEFT refuses (see `build_peft_config`), or
    `target_modules` that match none of the transformer's layers (or are needed: an architecture for which
    PEFT has no default).
    """
    config = build_peft_config(peft, argument)
    modules_to_save = getattr(config, "modules_to_save", None)  # not every method's configuration has it
    if len(adapters) > 1 and modules_to_save:
        # PEFT keeps a copy of each such module per adapter, and runs one copy at a time.
        raise ConfigurationError(
            f"{argument}: modules_to_save ({modules_to_save}) needs a single adapter, not several "
            f"({list(adapters)}): train such modules in the heads instead."
        )
    from peft import get_peft_model

    first, *others = adapters
    try:
        model = get_peft_model(transformer, config, adapter_name=first)
        for adapter in others:
            model.add_adapter(adapter, config)
    except ValueError as error:
        raise ConfigurationError(
            f"{argument}: {error} (target_modules names the transformer's layers to adapt, e.g. "
            f"{_module_names(transformer)})"
        ) from error
    # PEFT trains only the first adapter; ours all train, whichever a batch activates.
    model.base_model.set_adapter(list(adapters))
    return model


def _module_names(transformer: torch.nn.Module, count: int = 8) -> List[str]:
    """The last parts of the names of some of `transformer`'s linear layers, for error messages."""
    linear = [name for name, module in transformer.named_modules() if isinstance(module, torch.nn.Linear)]
    return sorted({name.rsplit(".", 1)[-1] for name in linear})[:count]


class TaskAdapters:
    """
    The adapters that serve each task, on a `PeftModel` made by `add_adapters`: activates a batch's task's
    adapters, and groups the rows of a batch by the adapters that serve them.

    Activating sets PEFT's active adapters on each adapted layer, as PEFT's `set_adapter` does, but
    without its freezing of the inactive adapters: the optimizer, distributed training and Jacobian descent
    all take the parameters that train when training starts.

    # Parameters

    model : `PeftModel`
        The transformer with every adapter that `task_adapters` names.
    task_adapters : `Mapping[str, Sequence[str]]`
        The adapters that serve each task, applied together (e.g. a shared one and the task's own).
    """

    def __init__(self, model: "PeftModel", task_adapters: Mapping[str, Sequence[str]]) -> None:
        from peft.tuners.tuners_utils import BaseTunerLayer

        self._task_adapters = {task: tuple(adapters) for task, adapters in task_adapters.items()}
        self._layers = [module for module in model.modules() if isinstance(module, BaseTunerLayer)]
        self._active: Optional[Tuple[str, ...]] = None
        self._parameters: Dict[str, List[torch.nn.Parameter]] = {}
        for layer in self._layers:
            for attribute in layer.adapter_layer_names:
                for adapter, part in getattr(layer, attribute).items():
                    parameters = part.parameters() if isinstance(part, torch.nn.Module) else [part]
                    self._parameters.setdefault(adapter, []).extend(parameters)

    @property
    def task_adapters(self) -> Dict[str, List[str]]:
        """The adapters that serve each task, by task."""
        return {task: list(adapters) for task, adapters in self._task_adapters.items()}

    def rows_of_adapters(self, tasks: Sequence[str]) -> Dict[Tuple[str, ...], List[int]]:
        """
        The rows of a batch with these per-instance `tasks`, by the adapters that serve them, in order of
        first appearance. Raises `ValueError` for a task that no adapters serve.
        """
        rows: Dict[Tuple[str, ...], List[int]] = {}
        for row, task in enumerate(tasks):
            adapters = self._task_adapters.get(task)
            if adapters is None:
                raise ValueError(
                    f"Batch has instances of task '{task}', which task_adapters gives no adapters; "
                    f"its tasks: {sorted(self._task_adapters)}."
                )
            rows.setdefault(adapters, []).append(row)
        return rows

    def activate(self, adapters: Tuple[str, ...]) -> None:
        """Makes `adapters` the active ones, on which the transformer's next forward passes run."""
        if adapters != self._active:
            for layer in self._layers:
                layer._active_adapter = list(adapters)
            self._active = adapters

    def zero_touching_idle(self, tensor: torch.Tensor, used: Sequence[Tuple[str, ...]]) -> torch.Tensor:
        """
        A zero that depends on the parameters of every adapter outside `used` (the adapters of a batch), so
        that `DistributedDataParallel` sees a (zero) gradient for each.
        """
        busy = {adapter for adapters in used for adapter in adapters}
        idle = [
            parameter
            for adapter, parameters in self._parameters.items()
            if adapter not in busy
            for parameter in parameters
        ]
        return zero_touching_parameters(tensor, idle)


def peft_models(model: torch.nn.Module) -> Dict[str, "PeftModel"]:
    """The transformers of `model` that carry PEFT adapters, by module name."""
    try:
        from peft import PeftModel
    except ImportError:
        return {}
    return {name: module for name, module in model.named_modules() if isinstance(module, PeftModel)}


def merge_adapters(
    model: torch.nn.Module, task_adapters: Optional[Mapping[str, Sequence[str]]], task: Optional[str]
) -> None:
    """
    Folds the adapters into the weights of each of `model`'s transformers (PEFT's `merge_and_unload`),
    which become plain transformers again. A transformer with several adapters (the backbone's
    `task_adapters`) gets those of `task`; its other adapters are dropped. Raises `ConfigurationError` for a
    missing or unknown `task` where one is needed.
    """
    for name, peft_model in peft_models(model).items():
        adapters = list(peft_model.peft_config)
        if len(adapters) > 1:
            if task_adapters is None or task not in task_adapters:
                raise ConfigurationError(
                    f"The model's adapters {adapters} serve different tasks: merging folds in those of one task, "
                    f"one of {sorted(task_adapters or {})}, not {task!r}."
                )
            adapters = list(task_adapters[task])
        parent, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(parent), attribute, peft_model.merge_and_unload(adapter_names=adapters))
