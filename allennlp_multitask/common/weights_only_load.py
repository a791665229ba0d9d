"""
Loads the files `torch.load` is given as data: tensors and plain Python values, never code.

AllenNLP 2.10 loads weights (an archive's `weights.th`, `best.th`, the `"pretrained"` initializer's file,
`--weights-file`) and checkpoints (`model_state_*.th` and `training_state_*.th` on `allennlp train -r`)
with `torch.load(path, map_location=...)`, which unpickles whatever the file names, running code from it,
on PyTorch before 2.6 or with `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` set. Importing this package makes
`torch.load` load with `weights_only=True` wherever its caller gives neither `weights_only` nor a
`pickle_module`. A file that holds anything else is refused with `UnsafeCheckpointError`, which names the
file, rather than PyTorch's error, which advises loading it with `weights_only=False`.
"""

import os
import pickle
import re
from typing import Any, Optional

import torch

_torch_load = torch.load


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A file given to `torch.load` holds something other than tensors and plain data."""


def _file_name(f: Any) -> str:
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    return str(getattr(f, "name", f))


def load(
    f: Any, map_location: Any = None, pickle_module: Any = None, *, weights_only: Optional[bool] = None, **kwargs: Any
) -> Any:
    """`torch.load`, with `weights_only=True` unless the caller gives `weights_only` or a `pickle_module`."""
    if weights_only is None and pickle_module is None:
        weights_only = True
    try:
        return _torch_load(f, map_location, pickle_module, weights_only=weights_only, **kwargs)
    except pickle.UnpicklingError as error:
        if not weights_only:
            raise
        found = re.search(r"GLOBAL (\S+)", str(error))
        raise UnsafeCheckpointError(
            f"{_file_name(f)} holds something other than tensors and plain data"
            + (f" ({found.group(1)})" if found else "")
            + ", so it was not loaded: loading it could run code from the file."
        ) from None


torch.load = load
