"""
How many optimizer steps updated a module's parameters, whichever optimizer took them: for a loss weighting
that learns from the change in the losses over a step (FAMO), which must tell a step from a batch of
gradient accumulation. Parameter version counters cannot: fused Adam updates parameters without bumping them.
"""

import weakref
from typing import Any, Dict, Optional

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.hooks import RemovableHandle

# Steps counted per module, for the modules asked about; the hook is registered at the first question.
_STEPS: "weakref.WeakKeyDictionary[torch.nn.Module, int]" = weakref.WeakKeyDictionary()
_HOOK: Optional[RemovableHandle] = None


def optimizer_steps_on(module: torch.nn.Module) -> int:
    """
    The optimizer steps that updated a parameter of `module` since the first call for it (0 then),
    counted by torch's global optimizer step hook.
    """
    global _HOOK
    if _HOOK is None:
        _HOOK = register_optimizer_step_post_hook(_count_step)
    return _STEPS.setdefault(module, 0)


def _count_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Dict[str, Any]) -> None:
    stepped = {id(parameter) for group in optimizer.param_groups for parameter in group["params"]}
    for module in list(_STEPS.keys()):
        if any(id(parameter) in stepped for parameter in module.parameters()):
            _STEPS[module] += 1
