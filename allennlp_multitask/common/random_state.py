"""
The state of the random number generators training draws from (Python's, NumPy's and PyTorch's), as
plain values that `torch.save` writes and `torch.load(weights_only=True)` reads back.
"""

import random
from typing import Any, Dict

import numpy
import torch


def data_random_state() -> Dict[str, Any]:
    """The state of Python's and NumPy's generators, which data loaders shuffle and sample with."""
    kind, keys, position, has_gauss, cached_gaussian = numpy.random.get_state(legacy=True)
    numpy_state = (kind, numpy.asarray(keys).tolist(), position, has_gauss, cached_gaussian)
    return {"python": random.getstate(), "numpy": numpy_state}


def random_state() -> Dict[str, Any]:
    """The state of every generator: `data_random_state()`'s, and PyTorch's (CPU, and CUDA if in use)."""
    state = {**data_random_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: Dict[str, Any]) -> None:
    """Puts back the generators that `state` (from `random_state` or `data_random_state`) holds."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached_gaussian = state["numpy"]
    numpy.random.set_state((kind, numpy.array(keys, dtype=numpy.uint32), position, has_gauss, cached_gaussian))
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])
