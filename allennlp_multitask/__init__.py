"""
allennlp-multitask: a drop-in replacement for AllenNLP 2.10's multitask model, predictor and friends.

Importing the package (`--include-package allennlp_multitask`, or a `.allennlp_plugins` file naming it)
registers its components, replacing AllenNLP's `"multitask"` model and predictor, and its optimizers
with ones that also accept torch's `"foreach"` and `"fused"` implementations; its `"gradient_descent"`
trainer and `"default"` checkpointer with ones that survive crashes and stop cleanly on SIGTERM; and
makes AllenNLP's writers of a run's files write atomically (`common.atomic_outputs`).
"""

import allennlp_multitask_compat  # noqa: F401  (first: AllenNLP's modules need its fixes as they load)
from allennlp_multitask import commands, common, data, modules, predictors, training
from allennlp_multitask.models import MultiTaskModel, get_forward_arguments

__all__ = ["MultiTaskModel", "commands", "common", "data", "get_forward_arguments", "modules", "predictors", "training"]
