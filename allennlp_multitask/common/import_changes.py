"""
What `import allennlp_multitask` (`--include-package allennlp_multitask`) changes in the process, in one place.

Importing the package registers its own components under new names (the configuration reference lists them),
and also changes what AllenNLP already had:

- `REPLACED_REGISTRATIONS`: names of AllenNLP's registries that take our class instead of AllenNLP's, so
  configs that name them get ours;
- `PATCHES`: attributes of AllenNLP, or of a library under it, set to our replacement;
- `EXIT_HOOKS`: functions registered with `atexit`;
- `COMPAT_FIXES`: AllenNLP's compatibility fixes for today's Hugging Face releases. Those are applied as
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
        "and under distributed training; ours fixes these, with the same keys and state dict.",
    ),
    Registration(
        "allennlp.predictors.predictor.Predictor",
        "multitask",
        "allennlp_multitask.predictors.multitask.MultiTaskPredictor",
        "allennlp.predictors.multitask.MultiTaskPredictor",
        "AllenNLP's fails for the stock classifier head and returns outputs grouped by task; ours predicts any "
        "mix of tasks, one output per input in input order.",
    ),
    Registration(
        "allennlp.data.data_loaders.data_loader.DataLoader",
        "multitask",
        "allennlp_multitask.data.data_loaders.multitask_data_loader.MultiTaskDataLoader",
        "allennlp.data.data_loaders.multitask_data_loader.MultiTaskDataLoader",
        "Takes evaluate's --batch-size, checks data paths at construction, reads with the garbage collector "
        "paused, tensorises a batch at a time and makes no reference cycle.",
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
        "Refuses evaluate_on_test under distributed training before the workers start, and has the callbacks "
        "let go of the trainer when training ends, so instances are freed when train_model returns.",
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
    _optimizer("adam", "AdamOptimizer"),
    _optimizer("adamw", "AdamWOptimizer"),
    _optimizer("adamax", "AdamaxOptimizer"),
    _optimizer("adagrad", "AdagradOptimizer"),
    _optimizer("adadelta", "AdadeltaOptimizer"),
    _optimizer("sgd", "SgdOptimizer"),
    _optimizer("rmsprop", "RmsPropOptimizer"),
    _optimizer("averaged_sgd", "AveragedSgdOptimizer"),
)

PATCHES: Tuple[Patch, ...] = (
    Patch(
        "tarfile.TarFile.extractall",
        "allennlp_multitask.common.archive_extraction.extractall",
        "AllenNLP extracts archives with a bare extractall, which writes members with `..` or absolute paths, or "
        "reached through links, outside the directory; ours checks every member first and extracts with the "
        "standard library's 'data' filter.",
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
)

EXIT_HOOKS: Tuple[ExitHook, ...] = (
    ExitHook(
        "allennlp_multitask.common.process_group_exit.destroy_process_group_left_open",
        "AllenNLP's distributed workers never destroy their process group, and on PyTorch 2.x can abort at exit "
        "(SIGABRT) after training finished.",
    ),
)
