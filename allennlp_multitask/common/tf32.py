"""
TF32 for float32 matrix products and convolutions on CUDA, for the trainer's `allow_tf32` option.
"""

import logging

import torch

logger = logging.getLogger(__name__)


def turn_on_tf32(device: torch.device) -> None:
    """
    Lets CUDA run float32 matrix products and cuDNN convolutions on TF32 tensor cores (Ampere and later):
    sets `torch.backends.cuda.matmul.allow_tf32` (what `torch.set_float32_matmul_precision("high")` sets
    for CUDA, leaving the CPU's float32 products alone) and `torch.backends.cudnn.allow_tf32` (torch's
    default already) to `True`, for the whole process and for good. On the CPU it sets nothing and logs so.
    The flags are set through torch's older API, which every torch from 2.4 on reads, whichever API other
    code reads them through afterwards.
    """
    if device.type != "cuda":
        logger.info("allow_tf32: the trainer runs on %s, where TF32 does not apply; nothing set.", device)
        return
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    major, minor = torch.cuda.get_device_capability(device)
    if major < 8:
        logger.info(
            "allow_tf32: set, but %s (compute capability %d.%d) has no TF32 tensor cores (Ampere and later do); "
            "float32 products run as before.",
            torch.cuda.get_device_name(device),
            major,
            minor,
        )
    else:
        logger.info("allow_tf32: float32 matrix products and convolutions run in TF32 on CUDA.")
