"""
`allennlp merge-adapters` and `allennlp export-adapters`: what a `model.tar.gz` trained with a `peft`
block becomes for serving (an archive with the adapters folded into the transformer's weights) and for
other tools (the adapters in PEFT's own format).
"""

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any, List, Optional

import torch
from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError
from allennlp.models.archival import archive_model, load_archive

from allennlp_multitask.modules.peft import merge_adapters, peft_models

# The configuration keys of our transformer backbone and embedders that a merged model no longer has.
_PEFT_KEYS = ("peft", "task_adapters")


def write_merged_archive(archive_file: str, output_file: str, task: Optional[str] = None) -> None:
    """
    Writes `output_file`, the archive `archive_file` with its adapters folded into its transformers'
    weights: a model without PEFT, whose configuration has no `peft` blocks, which loads, evaluates and
    predicts like a full fine-tune's (and needs no PEFT). With per-task adapters (`task_adapters`), the
    merged model has those of `task`.
    """
    archive = load_archive(archive_file)
    model = archive.model
    if not peft_models(model):
        raise ConfigurationError(f"{archive_file} has no PEFT adapters to merge.")
    # The per-task adapters of a multitask model's backbone, if it has them.
    merge_adapters(model, getattr(getattr(model, "backbone", None), "task_adapters", None), task)
    config = archive.config.as_dict(quiet=True)
    _drop_peft_keys(config)
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "config.json").write_text(json.dumps(config, indent=2))
        model.vocab.save_to_files(str(Path(directory, "vocabulary")))
        torch.save(model.state_dict(), Path(directory, "weights.th"))
        archive_model(directory, weights="weights.th", archive_path=output_file)


def export_adapters(archive_file: str, directory: str) -> List[Path]:
    """
    Saves the adapters of each of the archive's transformers with PEFT's `save_pretrained`, in a folder of
    `directory` named after the transformer's module (e.g. `_backbone._embedder.transformer_model`), and
    returns those folders. `PeftModel.from_pretrained(transformer, folder)` loads the shared adapter
    (`default`); each other adapter is in its own subfolder (`folder/<adapter>`).
    """
    models = peft_models(load_archive(archive_file).model)
    if not models:
        raise ConfigurationError(f"{archive_file} has no PEFT adapters to export.")
    folders = []
    for name, peft_model in models.items():
        folder = Path(directory, name)
        peft_model.save_pretrained(str(folder))
        folders.append(folder)
    return folders


def _drop_peft_keys(config: Any) -> None:
    """Removes `_PEFT_KEYS` from every part of `config` (a configuration as dicts and lists) with a `peft` block."""
    if isinstance(config, dict):
        if "peft" in config:
            for key in _PEFT_KEYS:
                config.pop(key, None)
        parts = list(config.values())
    elif isinstance(config, list):
        parts = config
    else:
        return
    for part in parts:
        _drop_peft_keys(part)


def _archive_subparser(
    parser: argparse._SubParsersAction, name: str, description: str, target: str, target_help: str
) -> argparse.ArgumentParser:
    """The subcommand `name`'s parser, with its two arguments: the archive and the `target` to write."""
    subparser = parser.add_parser(name, description=description, help=description)
    subparser.add_argument("archive_file", help="the model.tar.gz of a run with a peft block")
    subparser.add_argument(target, help=target_help)
    return subparser


@Subcommand.register("merge-adapters")
class MergeAdapters(Subcommand):
    """`allennlp merge-adapters ARCHIVE OUTPUT [--task TASK]`: see `write_merged_archive`."""

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Fold a PEFT-trained model's adapters into its weights, as a new model archive."
        subparser = _archive_subparser(parser, self.name, description, "output_file", "the merged archive to write")
        subparser.add_argument("--task", default=None, help="with per-task adapters: whose to fold in")
        subparser.set_defaults(func=lambda args: write_merged_archive(args.archive_file, args.output_file, args.task))
        return subparser


@Subcommand.register("export-adapters")
class ExportAdapters(Subcommand):
    """`allennlp export-adapters ARCHIVE DIRECTORY`: see `export_adapters`."""

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = "Save a PEFT-trained model's adapters in PEFT's format (for PeftModel.from_pretrained)."
        target_help = "where to write the adapters, a folder per transformer"
        subparser = _archive_subparser(parser, self.name, description, "directory", target_help)
        subparser.set_defaults(func=lambda args: print(*export_adapters(args.archive_file, args.directory), sep="\n"))
        return subparser
