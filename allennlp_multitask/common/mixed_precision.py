"""
Mixed precision through `torch.amp`: the dtypes a configuration names (`amp_dtype`), whether a device
autocasts in them, and outputs put back in float32.
"""

from typing import Any, Dict

import torch
from allennlp.common.checks import ConfigurationError

AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def amp_dtype_named(name: str, where: str) -> torch.dtype:
    """The autocast dtype `name` (`"float16"` or `"bfloat16"`); `where` names the option for the error."""
    if name not in AMP_DTYPES:
        raise ConfigurationError(f"{where} must be one of {list(AMP_DTYPES)}, got {name!r}.")
    return AMP_DTYPES[name]


def check_autocast_supported(device: torch.device, dtype: torch.dtype, where: str) -> None:
    """
    Raises `ConfigurationError` where `device` does not train in `dtype` under autocast: float16 (with its
    gradient scaler) on CUDA only, bfloat16 on the CPU and on CUDA devices that support it (Ampere and later).
    """
    if dtype == torch.float16 and device.type != "cuda":
        raise ConfigurationError(
            f"{where}: float16 mixed precision needs a CUDA device (cuda_device), not {device}; on the CPU, "
            f'use "amp_dtype": "bfloat16".'
        )
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigurationError(
            f"{where}: {torch.cuda.get_device_name(device)} does not support bfloat16; use "
            f'"amp_dtype": "float16" (with its gradient scaler) on this GPU.'
        )


def autocast(device: torch.device, dtype: torch.dtype) -> torch.amp.autocast:
    """Autocast on `device`'s type in `dtype`."""
    return torch.amp.autocast(device.type, dtype=dtype)


def in_float32(outputs: Dict[str, Any]) -> Dict[str, Any]:
    """`outputs` with their float16 and bfloat16 tensors as float32 (the others as they are)."""
    return {
        key: value.float() if isinstance(value, torch.Tensor) and value.dtype in AMP_DTYPES.values() else value
        for key, value in outputs.items()
    }
