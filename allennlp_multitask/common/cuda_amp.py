"""
`torch.cuda.amp` as AllenNLP's trainer uses it, on the `torch.amp` API that replaces it.

AllenNLP 2.10's `GradientDescentTrainer` (`allennlp.training.gradient_descent_trainer`) enters
`amp.autocast(self._use_amp)` around every forward pass, with `from torch.cuda import amp`; PyTorch 2.4
deprecated `torch.cuda.amp.autocast`, so every run printed a `FutureWarning` for training and another for
validation, `use_amp` on or off. Importing this package makes that module's `amp` this one: the same
autocast and gradient scaler, for CUDA, through `torch.amp`.
"""

import sys
from typing import Any

import allennlp.training.gradient_descent_trainer
import torch


def autocast(
    enabled: bool = True, dtype: torch.dtype = torch.float16, cache_enabled: bool = True
) -> torch.amp.autocast:
    """`torch.cuda.amp.autocast(...)`: `torch.amp.autocast("cuda", ...)`."""
    return torch.amp.autocast("cuda", enabled=enabled, dtype=dtype, cache_enabled=cache_enabled)


def GradScaler(**kwargs: Any) -> torch.amp.GradScaler:
    """`torch.cuda.amp.GradScaler(...)`: `torch.amp.GradScaler("cuda", ...)`."""
    return torch.amp.GradScaler("cuda", **kwargs)


allennlp.training.gradient_descent_trainer.amp = sys.modules[__name__]  # type: ignore[attr-defined]
