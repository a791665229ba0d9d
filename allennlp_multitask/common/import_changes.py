"""
What `import allennlp_multitask` (`--include-package allennlp_multitask`) changes in the process, in one place.

Importing the package registers its own components under new names (the configuration reference lists them),
and also changes what AllenNLP already had:

- `REPLACED_REGISTRATIONS`: names of AllenNLP's registries that take our class instead of AllenNLP's, so
  configs that name them get ours;
- `PATCHES`: attributes of AllenNLP, or of a library under it, set to our replacement;
- `EXIT_HOOKS`: functions registered with `atexit`;
- `ADDED_SUBCOMMANDS`: commands added to the `allennlp` command line (new names, not replacements: other new
  names are configuration components, which the configuration reference lists);
- `COMPAT_FIXES`: AllenNLP's compatibility fixes for today's Hugging Face releases, and the fix that has
  `allennlp` find the subcommands of packages named by `--include-package`. Those are applied as
  AllenNLP's modules load, by the start-up `allennlp_multitask_compat.pth` file, whether or not this package is
  imported; they live in `allennlp_multitask_compat.FIXES`, with their reasons.

This module is data only: it imports nothing that registers or patches. `tests/common/test_import_changes.py`
compares it with what importing does, and checks that what we patch still has the shape we rely on. Adding a
registration or a patch is one entry here.
"""

from dataclasses import dataclass
from typing import Tuple

COMPAT_FIXES = "allennlp_multitask_compat.FIXES"


@dataclass(frozen=True)
class Registration:
    """`base`'s registered `name` is `ours` instead of AllenNLP's `replaces`, because `reason`."""

    base: str
    name: str
    ours: str
    replaces: str
    reason: str
    # Methods of AllenNLP's class that ours overrides and AllenNLP calls by name: renamed in another AllenNLP,
    # ours would silently not be called.
    overrides: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Patch:
    """
    The attribute `target` (`module.attribute` or `module.Class.attribute`) is `replacement`, because `reason`.
    `parameters` are the parameters of the original that the replacement relies on; `used_by` the functions
    that must look `target` up at call time (by its attribute name) for the patch to reach them.
    """

    target: str
    replacement: str
    reason: str
    parameters: Tuple[str, ...] = ()
    used_by: Tuple[str, ...] = ()


@dataclass(frozen=True)
class AddedSubcommand:
    """`allennlp {name}` is the command `ours` (an `allennlp.commands.subcommand.Subcommand`): `reason`."""

    name: str
    ours: str
    reason: str


@dataclass(frozen=True)
class ExitHook:
    """`function` is registered with `atexit`, because `reason`."""

    function: str
    reason: str


_OPTIMIZER_REASON = (
    "AllenNLP's wrapper passes its own list of arguments to torch, which predates `foreach` and `fused`; ours "
    "also takes them (a config without them builds exactly AllenNLP's optimizer)."
)


def _optimizer(name: str, class_name: str) -> Registration:
    return Registration(
        "allennlp.training.optimizers.Optimizer",
        name,
        f"allennlp_multitask.training.optimizers.{class_name}",
        f"allennlp.training.optimizers.{class_name}",
        _OPTIMIZER_REASON,
    )


REPLACED_REGISTRATIONS: Tuple[Registration, ...] = (
    Registration(
        "allennlp.models.model.Model",
        "multitask",
        "allennlp_multitask.models.multitask.MultiTaskModel",
        "allennlp.models.multitask.MultiTaskModel",
        "AllenNLP's slices batches in place, mixes up heads with a common prefix, fails on partial loss_weights "
        "and under distributed training; ours fixes these, with the same keys and state dict, and can autocast "
        "evaluation and prediction (inference_amp_dtype).",
    ),
    Registration(
        "allennlp.predictors.predictor.Predictor",
        "multitask",
        "allennlp_multitask.predictors.multitask.MultiTaskPredictor",
        "allennlp.predictors.multitask.MultiTaskPredictor",
        "AllenNLP's fails for the stock classifier head and returns outputs grouped by task; ours predicts any "
        "mix of tasks, one output per input in input order, takes lines in the task reader's own keys, names "
        "each output's task and echoes an input's id.",
    ),
    Registration(
        "allennlp.data.data_loaders.data_loader.DataLoader",
        "multitask",
        "allennlp_multitask.data.data_loaders.multitask_data_loader.MultiTaskDataLoader",
        "allennlp.data.data_loaders.multitask_data_loader.MultiTaskDataLoader",
        "Takes evaluate's --batch-size, checks data paths at construction, reads with the garbage collector "
        "paused, tensorises a batch at a time, makes no reference cycle, its length is the number of "
        "batches an epoch gives, also with instances_per_epoch (AllenNLP issue 5732), and a batch of instances "
        "with different fields names the task, the field and where they are in the task's file.",
    ),
    Registration(
        "allennlp.data.dataset_readers.dataset_reader.DatasetReader",
        "multitask",
        "allennlp_multitask.data.dataset_readers.multitask.MultiTaskDatasetReader",
        "allennlp.data.dataset_readers.multitask.MultiTaskDatasetReader",
        "An unknown --multitask-head names the known tasks instead of a bare KeyError.",
    ),
    Registration(
        "allennlp.commands.train.TrainModel",
        "default",
        "allennlp_multitask.commands.train.TrainModel",
        "allennlp.commands.train.TrainModel",
        "Refuses evaluate_on_test under distributed training before the workers start, and tasks whose labels "
        "would merge in a default label namespace; has the callbacks let go of the trainer when training ends, "
        "so instances are freed when train_model returns.",
    ),
    Registration(
        "allennlp.training.metrics.metric.Metric",
        "covariance",
        "allennlp_multitask.training.metrics.covariance.Covariance",
        "allennlp.training.metrics.covariance.Covariance",
        "AllenNLP's raises under distributed training; ours merges the workers' moments at every update.",
    ),
    Registration(
        "allennlp.training.metrics.metric.Metric",
        "pearson_correlation",
        "allennlp_multitask.training.metrics.pearson_correlation.PearsonCorrelation",
        "allennlp.training.metrics.pearson_correlation.PearsonCorrelation",
        "AllenNLP's raises under distributed training; ours merges the workers' moments at every update.",
    ),
    Registration(
        "allennlp.training.metrics.metric.Metric",
        "spearman_correlation",
        "allennlp_multitask.training.metrics.spearman_correlation.SpearmanCorrelation",
        "allennlp.training.metrics.spearman_correlation.SpearmanCorrelation",
        "AllenNLP's raises for workers' batches of unequal sizes and counts earlier batches again at each update.",
    ),
    Registration(
        "allennlp.training.metrics.metric.Metric",
        "span_f1",
        "allennlp_multitask.training.metrics.span_based_f1_measure.SpanBasedF1Measure",
        "allennlp.training.metrics.span_based_f1_measure.SpanBasedF1Measure",
        "AllenNLP's raises under distributed training; ours sums the workers' span counts at every update.",
    ),
    Registration(
        "allennlp.training.trainer.Trainer",
        "gradient_descent",
        "allennlp_multitask.training.gradient_descent_trainer.GradientDescentTrainer",
        "allennlp.training.gradient_descent_trainer.GradientDescentTrainer",
        "AllenNLP's default trainer stops at once on SIGTERM, losing what came after the last checkpoint, fails "
        "at the end of a resumed run on a torn best.th and re-reads the finished batches; ours stops at a "
        "checkpoint on SIGTERM or SIGINT, writes best.th atomically and repairs it on resume, resumes the "
        "multitask loader and random state exactly, and names the heads' inputs when a batch has no loss; "
        "mixed precision goes through torch.amp, in bfloat16 too (amp_dtype, also on the CPU), with the "
        "gradient scaler's state in checkpoints.",
        overrides=(
            "train",
            "_try_train",
            "batch_outputs",
            "_save_model_state",
            "get_checkpoint_state",
            "_maybe_restore_checkpoint",
        ),
    ),
    Registration(
        "allennlp.training.checkpointer.Checkpointer",
        "default",
        "allennlp_multitask.training.checkpointer.Checkpointer",
        "allennlp.training.checkpointer.Checkpointer",
        "AllenNLP's writes checkpoints straight to their final paths, and a torn or lone one makes "
        "`allennlp train -r` crash; ours writes them atomically, resumes from the newest whole checkpoint, and "
        "writes one where a signal asked training to stop.",
        overrides=(
            "maybe_save_checkpoint",
            "save_checkpoint",
            "_find_all_checkpoints",
            "find_latest_checkpoint",
            "load_checkpoint",
        ),
    ),
    Registration(
        "allennlp.modules.backbones.backbone.Backbone",
        "pretrained_transformer",
        "allennlp_multitask.modules.backbones.pretrained_transformer_backbone.PretrainedTransformerBackbone",
        "allennlp.modules.backbones.pretrained_transformer_backbone.PretrainedTransformerBackbone",
        "Also fine-tunes the transformer with PEFT (a `peft` block: LoRA and other adapter methods), with "
        "adapters per task on homogeneous and mixed batches (`task_adapters`), and `gradient_checkpointing`; "
        "without them it is AllenNLP's.",
    ),
    Registration(
        "allennlp.modules.token_embedders.token_embedder.TokenEmbedder",
        "pretrained_transformer",
        "allennlp_multitask.modules.token_embedders.pretrained_transformer_embedder.PretrainedTransformerEmbedder",
        "allennlp.modules.token_embedders.pretrained_transformer_embedder.PretrainedTransformerEmbedder",
        "Also fine-tunes the transformer with PEFT (a `peft` block adds one adapter, the transformer's own "
        "weights frozen), and its `gradient_checkpointing` works on today's transformers (AllenNLP's set a "
        "configuration key they ignore); otherwise it is AllenNLP's.",
    ),
    Registration(
        "allennlp.modules.token_embedders.token_embedder.TokenEmbedder",
        "pretrained_transformer_mismatched",
        "allennlp_multitask.modules.token_embedders.pretrained_transformer_mismatched_embedder."
        "PretrainedTransformerMismatchedEmbedder",
        "allennlp.modules.token_embedders.pretrained_transformer_mismatched_embedder."
        "PretrainedTransformerMismatchedEmbedder",
        "Also fine-tunes the transformer with PEFT, and checkpoints its gradients (`gradient_checkpointing`), as "
        "our `pretrained_transformer` embedder does; otherwise it is AllenNLP's.",
    ),
    Registration(
        "allennlp.training.learning_rate_schedulers.learning_rate_scheduler.LearningRateScheduler",
        "reduce_on_plateau",
        "allennlp_multitask.training.learning_rate_schedulers.reduce_on_plateau.ReduceOnPlateauLearningRateScheduler",
        "allennlp.training.learning_rate_schedulers.pytorch_lr_schedulers.ReduceOnPlateauLearningRateScheduler",
        "AllenNLP's always passes `verbose` to torch's ReduceLROnPlateau, which torch removed (TypeError at "
        "construction); ours builds the same schedule without it, and logs each reduction where `verbose` asks.",
    ),
    _optimizer("adam", "AdamOptimizer"),
    _optimizer("adamw", "AdamWOptimizer"),
    _optimizer("adamax", "AdamaxOptimizer"),
    _optimizer("adagrad", "AdagradOptimizer"),
    _optimizer("adadelta", "AdadeltaOptimizer"),
    _optimizer("sgd", "SgdOptimizer"),
    _optimizer("rmsprop", "RmsPropOptimizer"),
    _optimizer("averaged_sgd", "AveragedSgdOptimizer"),
)

_ATOMIC_REASON = (
    "AllenNLP writes {what} straight to the final path, so a crash (or SIGKILL) while writing leaves it torn; "
    "ours writes to a temporary path beside it, flushed, then renamed over it (`common.atomic_files`), with the "
    "permission bits AllenNLP's would have left."
)


def _atomic(target: str, replacement: str, what: str, parameters: Tuple[str, ...], *used_by: str) -> Patch:
    return Patch(
        target,
        f"allennlp_multitask.common.{replacement}",
        _ATOMIC_REASON.format(what=what),
        parameters=parameters,
        used_by=used_by,
    )


_DUMP_METRICS = ("file_path", "metrics", "log")
_ARCHIVE_MODEL = ("serialization_dir", "weights", "archive_path", "include_in_archive")

# `common.atomic_outputs`: the writers of a run's files, where AllenNLP's modules look them up.
ATOMIC_OUTPUT_PATCHES: Tuple[Patch, ...] = (
    _atomic(
        "allennlp.common.params.Params.to_file",
        "atomic_outputs.params_to_file",
        "config.json",
        ("self", "params_file", "preference_orders"),
    ),
    _atomic("allennlp.common.meta.Meta.to_file", "atomic_outputs.meta_to_file", "meta.json", ("self", "path")),
    _atomic(
        "allennlp.data.vocabulary.Vocabulary.save_to_files",
        "atomic_outputs.save_vocabulary",
        "the vocabulary directory (ours replaces it as a whole)",
        ("self", "directory"),
    ),
    _atomic(
        "allennlp.common.util.dump_metrics",
        "atomic_outputs.dump_metrics",
        "metrics.json and metrics_epoch_*.json",
        _DUMP_METRICS,
        "allennlp.training.gradient_descent_trainer.GradientDescentTrainer._try_train",
        "allennlp.commands.train.TrainModel.finish",
    ),
    _atomic(
        "allennlp.evaluation.evaluator.dump_metrics",
        "atomic_outputs.dump_metrics",
        "`allennlp evaluate`'s output file",
        _DUMP_METRICS,
        "allennlp.evaluation.evaluator.SimpleEvaluator.__call__",
    ),
    _atomic(
        "allennlp.training.util.dump_metrics",
        "atomic_outputs.dump_metrics",
        "the metrics file of `training.util.evaluate`",
        _DUMP_METRICS,
        "allennlp.training.util.evaluate",
    ),
    _atomic(
        "allennlp.models.archival.archive_model",
        "atomic_outputs.archive_model",
        "model.tar.gz",
        _ARCHIVE_MODEL,
    ),
    _atomic(
        "allennlp.models.archive_model",
        "atomic_outputs.archive_model",
        "model.tar.gz (`allennlp.models` imported `archive_model` from `archival`)",
        _ARCHIVE_MODEL,
    ),
    _atomic(
        "allennlp.commands.train.archive_model",
        "atomic_outputs.archive_model",
        "model.tar.gz at the end of `allennlp train`",
        _ARCHIVE_MODEL,
        "allennlp.commands.train.train_model",
        "allennlp.commands.train._train_worker",
    ),
    _atomic(
        "allennlp.training.gradient_descent_trainer.hardlink_or_copy",
        "atomic_files.link_atomically",
        "best.th (a link to the checkpoint just saved, or a copy of it where links fail)",
        ("source", "dest"),
        "allennlp.training.gradient_descent_trainer.GradientDescentTrainer._try_train",
    ),
)

PATCHES: Tuple[Patch, ...] = (
    Patch(
        "tarfile.TarFile.extractall",
        "allennlp_multitask.common.archive_extraction.extractall",
        "AllenNLP extracts archives with a bare extractall, which writes members with `..` or absolute paths, or "
        "reached through links, outside the directory; ours checks every member with the standard library's "
        "'data' filter, before and as it extracts, and extracts what it lets through as Python's default does.",
        parameters=("self", "path", "members", "numeric_owner", "filter"),
    ),
    Patch(
        "cached_path._cached_path.check_tarfile",
        "allennlp_multitask.common.archive_extraction.check_tarfile",
        "cached_path's own check names no member for most of what it refuses; it is left to our extractall.",
        parameters=("tar_file",),
        used_by=("cached_path._cached_path.cached_path",),
    ),
    Patch(
        "allennlp.models.archival.extracted_archive",
        "allennlp_multitask.common.archive_extraction.extracted_archive",
        "AllenNLP's left its temporary directory behind when extraction failed; ours removes it.",
        parameters=("resolved_archive_file", "cleanup"),
        used_by=("allennlp.models.archival.load_archive",),
    ),
    Patch(
        "torch.load",
        "allennlp_multitask.common.weights_only_load.load",
        "AllenNLP loads weights and checkpoints with torch.load, which unpickles code on PyTorch before 2.6 or "
        "with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD; ours loads with weights_only=True unless its caller says "
        "otherwise, and names the file it refuses.",
        parameters=("f", "map_location", "pickle_module", "weights_only"),
    ),
    Patch(
        "allennlp.training.gradient_descent_trainer.amp",
        "allennlp_multitask.common.cuda_amp",
        "AllenNLP's trainer autocasts every forward pass through `torch.cuda.amp`, deprecated since PyTorch 2.4, so "
        "every run printed two FutureWarnings, `use_amp` on or off; ours is the same autocast and gradient scaler "
        "through `torch.amp`.",
        used_by=(
            "allennlp.training.gradient_descent_trainer.GradientDescentTrainer.__init__",
            "allennlp.training.gradient_descent_trainer.GradientDescentTrainer._train_epoch",
            "allennlp.training.gradient_descent_trainer.GradientDescentTrainer._validation_loss",
        ),
    ),
    *ATOMIC_OUTPUT_PATCHES,
)

ADDED_SUBCOMMANDS: Tuple[AddedSubcommand, ...] = (
    AddedSubcommand(
        "merge-adapters",
        "allennlp_multitask.commands.adapters.MergeAdapters",
        "writes a model archive with a PEFT-trained model's adapters folded into the transformer's weights, "
        "which serves without PEFT.",
    ),
    AddedSubcommand(
        "export-adapters",
        "allennlp_multitask.commands.adapters.ExportAdapters",
        "saves a PEFT-trained model's adapters in PEFT's own format, for `PeftModel.from_pretrained`.",
    ),
    AddedSubcommand(
        "serve",
        "allennlp_multitask.commands.serve.Serve",
        "serves a model archive over HTTP with allennlp-server's command line and endpoints (archived with "
        "AllenNLP), batching concurrent requests of any mix of tasks into one forward pass (the `serve` extra).",
    ),
)

EXIT_HOOKS: Tuple[ExitHook, ...] = (
    ExitHook(
        "allennlp_multitask.common.process_group_exit.destroy_process_group_left_open",
        "AllenNLP's distributed workers never destroy their process group, and on PyTorch 2.x can abort at exit "
        "(SIGABRT) after training finished.",
    ),
)
