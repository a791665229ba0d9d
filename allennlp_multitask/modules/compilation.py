"""
`torch.compile` of a Hugging Face transformer, for the `compile` option of the `pretrained_transformer`
backbone.
"""

from typing import Any, Dict, Optional

import torch
from allennlp.common.checks import ConfigurationError


def compile_in_place(module: torch.nn.Module, options: Optional[Dict[str, Any]], where: str) -> None:
    """
    Compiles `module`'s forward pass with `torch.compile` and `options` (its keyword arguments: `mode`,
    `backend`, `dynamic`, `fullgraph`, `options`) in place (`torch.nn.Module.compile`): the module stays
    itself, so its state dict keeps its keys (no `_orig_mod.` prefix) and archives load either way. The
    first forward pass, and the first with a new sequence length, compile (from the second, for any length).
    Options that `torch.compile` refuses raise `ConfigurationError`, naming `where`.
    """
    try:
        module.compile(**(options or {}))
    except (TypeError, RuntimeError) as error:
        raise ConfigurationError(f"{where}: torch.compile refuses {options}: {error}") from error
