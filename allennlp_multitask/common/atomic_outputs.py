"""
Makes every file `allennlp train` writes atomic (see `atomic_files`), by wrapping the AllenNLP functions
that write them so that they write to a temporary path that then replaces the target. Importing this
module changes these names in AllenNLP (the originals do the writing, unchanged otherwise):

- `Params.to_file` (`config.json`) and `Meta.to_file` (`meta.json`);
- `Vocabulary.save_to_files` (the `vocabulary` directory, replaced as a whole);
- `dump_metrics` in `allennlp.common.util`, and where `allennlp.evaluation.evaluator` and
  `allennlp.training.util` imported it (`metrics.json`, `metrics_epoch_*.json`, `allennlp evaluate`'s
  output file);
- `archive_model` in `allennlp.models.archival`, and where `allennlp.models` and
  `allennlp.commands.train` imported it (`model.tar.gz`);
- `hardlink_or_copy` where `allennlp.training.gradient_descent_trainer` imported it: the trainer links
  `best.th` to the checkpoint just saved, and copied it in place where links fail.

The checkpoints, and `best.th` when the trainer saves it itself, are written by our `Checkpointer` and
`GradientDescentTrainer`.
"""

import os
import shutil
from typing import Any, Callable, Dict, List, Optional

import allennlp.commands.train
import allennlp.common.util
import allennlp.evaluation.evaluator
import allennlp.models
import allennlp.models.archival
import allennlp.training.gradient_descent_trainer
import allennlp.training.util
from allennlp.common import Params
from allennlp.common.meta import Meta
from allennlp.data import Vocabulary

from allennlp_multitask.common.atomic_files import PathOrStr, link_atomically, replaced_atomically

_params_to_file = Params.to_file
_meta_to_file = Meta.to_file
_save_vocabulary = Vocabulary.save_to_files
_dump_metrics = allennlp.common.util.dump_metrics
_archive_model = allennlp.models.archival.archive_model


def params_to_file(self: Params, params_file: str, preference_orders: Optional[List[List[str]]] = None) -> None:
    """`Params.to_file`, written atomically."""
    with replaced_atomically(params_file) as temporary:
        _params_to_file(self, temporary, preference_orders)


def meta_to_file(self: Meta, path: PathOrStr) -> None:
    """`Meta.to_file`, written atomically."""
    with replaced_atomically(path) as temporary:
        _meta_to_file(self, temporary)


def save_vocabulary(self: Vocabulary, directory: str) -> None:
    """
    `Vocabulary.save_to_files`, the directory replaced as a whole. As AllenNLP's, it creates the missing
    parent directories, and keeps the files of an existing directory that the vocabulary does not rewrite.
    """
    os.makedirs(os.path.dirname(os.path.abspath(directory)), exist_ok=True)
    with replaced_atomically(directory, directory=True) as temporary:
        if os.path.isdir(directory):
            shutil.copytree(directory, temporary, dirs_exist_ok=True)
        _save_vocabulary(self, temporary)


def dump_metrics(file_path: Optional[str], metrics: Dict[str, Any], log: bool = False) -> None:
    """AllenNLP's `dump_metrics`, the file written atomically."""
    if not file_path:
        _dump_metrics(file_path, metrics, log)
        return
    with replaced_atomically(file_path) as temporary:
        _dump_metrics(temporary, metrics, log)


def archive_model(
    serialization_dir: PathOrStr,
    weights: str = allennlp.models.archival._DEFAULT_WEIGHTS,
    archive_path: Optional[PathOrStr] = None,
    include_in_archive: Optional[List[str]] = None,
) -> str:
    """AllenNLP's `archive_model`, the archive written atomically."""
    archive_file = os.path.join(serialization_dir, "model.tar.gz") if archive_path is None else archive_path
    if os.path.isdir(archive_file):
        archive_file = os.path.join(archive_file, "model.tar.gz")
    with replaced_atomically(archive_file) as temporary:
        _archive_model(serialization_dir, weights, temporary, include_in_archive)
    return str(archive_file)


def _replace(modules: List[Any], name: str, replacement: Callable[..., Any]) -> None:
    for module in modules:
        setattr(module, name, replacement)


Params.to_file = params_to_file  # type: ignore[method-assign]
Meta.to_file = meta_to_file  # type: ignore[method-assign]
Vocabulary.save_to_files = save_vocabulary  # type: ignore[method-assign]
_replace([allennlp.common.util, allennlp.evaluation.evaluator, allennlp.training.util], "dump_metrics", dump_metrics)
_replace([allennlp.models.archival, allennlp.models, allennlp.commands.train], "archive_model", archive_model)
_replace([allennlp.training.gradient_descent_trainer], "hardlink_or_copy", link_atomically)
