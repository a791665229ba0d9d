"""Importing the package registers every component under the names configs use, AllenNLP's replaced."""

import subprocess
import sys

import pytest
from allennlp.data import DataLoader, DatasetReader
from allennlp.data.data_loaders.multitask_epoch_sampler import MultiTaskEpochSampler
from allennlp.models import Model
from allennlp.models.heads import Head
from allennlp.modules import Backbone
from allennlp.predictors import Predictor
from allennlp.training import Trainer
from allennlp.training.callbacks import TrainerCallback
from allennlp.training.checkpointer import Checkpointer as AllenNlpCheckpointer
from allennlp.training.metrics import Metric

from allennlp_multitask.data import (
    ConllTagsReader,
    LabeledTextJsonReader,
    MultiTaskDataLoader,
    MultiTaskDatasetReader,
    TemperatureSampler,
)
from allennlp_multitask.models import (
    DynamicWeightAverage,
    LossWeighting,
    MultiTaskModel,
    StaticLossWeighting,
    UncertaintyLossWeighting,
)
from allennlp_multitask.models.heads import RegressionHead, TaggerHead
from allennlp_multitask.modules import EmbedderBackbone
from allennlp_multitask.predictors import MultiTaskPredictor
from allennlp_multitask.training import Checkpointer, GradientDescentTrainer
from allennlp_multitask.training.callbacks import JacobianDescentCallback
from allennlp_multitask.training.metrics import (
    Covariance,
    PearsonCorrelation,
    SpanBasedF1Measure,
    SpearmanCorrelation,
)
from tests.conftest import REPO_ROOT


def test_components_are_registered_under_their_config_names():
    assert Model.by_name("multitask") is MultiTaskModel
    assert Predictor.by_name("multitask") is MultiTaskPredictor
    assert Backbone.by_name("embedder") is EmbedderBackbone
    assert Head.by_name("tagger") is TaggerHead
    assert Head.by_name("regression") is RegressionHead
    assert DatasetReader.by_name("labeled_text_json") is LabeledTextJsonReader
    assert DatasetReader.by_name("conll_tags") is ConllTagsReader
    assert DatasetReader.by_name("multitask") is MultiTaskDatasetReader
    assert DataLoader.by_name("multitask") is MultiTaskDataLoader
    assert MultiTaskEpochSampler.by_name("temperature") is TemperatureSampler
    assert LossWeighting.by_name("static") is StaticLossWeighting
    assert LossWeighting.by_name("uncertainty") is UncertaintyLossWeighting
    assert LossWeighting.by_name("dwa") is DynamicWeightAverage
    assert Metric.by_name("span_f1") is SpanBasedF1Measure
    assert Metric.by_name("covariance") is Covariance
    assert Metric.by_name("pearson_correlation") is PearsonCorrelation
    assert Metric.by_name("spearman_correlation") is SpearmanCorrelation

    assert TrainerCallback.by_name("jacobian_descent") is JacobianDescentCallback
    assert Trainer.resolve_class_name("gradient_descent") == (GradientDescentTrainer, "from_partial_objects")
    assert AllenNlpCheckpointer.by_name("default") is Checkpointer


def import_logs(level: str) -> str:
    """What importing the package logs, in a new process logging at `level` (`"INFO"`, `"DEBUG"`)."""
    code = f"import logging; logging.basicConfig(level=logging.{level}); import allennlp_multitask"
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stderr


@pytest.mark.slow
@pytest.mark.subprocess
def test_importing_logs_which_class_replaces_allennlps_at_debug():
    logs = import_logs("DEBUG")
    # AllenNLP's own message said "... so overwriting with Model", naming neither class that matters.
    assert "overwriting with" not in logs
    # Our classes sit where AllenNLP's do, in our package.
    for kind, name, path in [
        ("Model", "multitask", "models.multitask.MultiTaskModel"),
        ("Predictor", "multitask", "predictors.multitask.MultiTaskPredictor"),
        ("DataLoader", "multitask", "data.data_loaders.multitask_data_loader.MultiTaskDataLoader"),
        ("Trainer", "gradient_descent", "training.gradient_descent_trainer.GradientDescentTrainer"),
        ("Checkpointer", "default", "training.checkpointer.Checkpointer"),
    ]:
        assert f"{kind} '{name}' is allennlp_multitask.{path}, replacing allennlp.{path}" in logs


@pytest.mark.slow
@pytest.mark.subprocess
def test_importing_logs_nothing_at_allennlps_default_level():
    # `allennlp` logs at INFO: what we replace is listed in the docs, and logged at DEBUG only.
    assert [line for line in import_logs("INFO").splitlines() if "allennlp_multitask" in line] == []
