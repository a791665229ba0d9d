"""
The `pretrained_transformer` backbone's `compile`: `allennlp train` trains the transformer example compiled
(with gradient checkpointing, and LoRA adapters), and the state dict and archive are those of an uncompiled
model. Compiling with inductor (torch's default) takes over a minute for even the tiny BERT on two shared
CPU cores, so these runs compile with the `aot_eager` backend: Dynamo captures the transformer's graphs and
AOTAutograd traces their backward passes, as with inductor, without generating code.
"""

import json
from pathlib import Path
from typing import Any, Dict, List

import numpy
import pytest
import torch
import torch._dynamo.utils
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.models.archival import load_archive
from allennlp.modules import Backbone

from tests.commands.peft_runs import peft_config
from tests.commands.peft_runs import train as train_config
from tests.commands.runs import DATA, allennlp
from tests.conftest import REPO_ROOT

COMPILED = {"compile": True, "compile_options": {"backend": "aot_eager"}}
TRANSFORMER_EXAMPLE = REPO_ROOT / "examples" / "transformer_sentiment_and_topic.jsonnet"


@pytest.fixture
def transformer_example(tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The transformer example's config, on the tiny BERT."""
    monkeypatch.setenv("TRANSFORMER_MODEL", str(tiny_bert_dir))
    monkeypatch.setenv("TRANSFORMER_HIDDEN_SIZE", "16")
    return TRANSFORMER_EXAMPLE


def train_example(run: Path, monkeypatch: pytest.MonkeyPatch, **backbone: Any) -> None:
    overrides = {"trainer.num_epochs": 1, **{f"model.backbone.{key}": value for key, value in backbone.items()}}
    allennlp("train", str(TRANSFORMER_EXAMPLE), "-s", str(run), "-o", json.dumps(overrides), monkeypatch=monkeypatch)


def graphs_compiled() -> int:
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def metrics(run: Path) -> Dict[str, Any]:
    return json.loads((run / "metrics.json").read_text())


def sentiment_probabilities(archive: Path, overrides: Dict[str, Any]) -> List[List[float]]:
    loaded = load_archive(str(archive), overrides=json.dumps(overrides))
    instances = list(loaded.dataset_reader.readers["sentiment"].read(DATA + "sentiment_validation.jsonl"))[:4]  # type: ignore[attr-defined]
    return [output["sentiment_probs"].tolist() for output in loaded.model.eval().forward_on_instances(instances)]


def assert_same_training(compiled: Path, uncompiled: Path) -> None:
    """The runs' state dicts have the same keys (no `_orig_mod.`), and their losses agree up to rounding."""
    compiled_state = torch.load(compiled / "best.th", map_location="cpu")
    assert compiled_state.keys() == torch.load(uncompiled / "best.th", map_location="cpu").keys()
    assert not any("_orig_mod" in key for key in compiled_state)
    for key in ("training_loss", "validation_loss"):
        assert metrics(compiled)[key] == pytest.approx(metrics(uncompiled)[key], rel=1e-4), key


@pytest.mark.slow
def test_the_transformer_example_trains_compiled_and_checkpointed_into_an_archive_that_loads_compiled_or_not(
    transformer_example, in_repo_root, tmp_path, monkeypatch
):
    graphs_before = graphs_compiled()
    compiled, uncompiled = tmp_path / "compiled", tmp_path / "uncompiled"
    train_example(compiled, monkeypatch, gradient_checkpointing=True, **COMPILED)
    assert graphs_compiled() > graphs_before
    train_example(uncompiled, monkeypatch, gradient_checkpointing=True)
    assert_same_training(compiled, uncompiled)

    archive = compiled / "model.tar.gz"
    uncompiled_backbone = {"model.backbone.compile": False, "model.backbone.compile_options": None}
    numpy.testing.assert_allclose(
        sentiment_probabilities(archive, uncompiled_backbone), sentiment_probabilities(archive, {}), rtol=1e-5
    )


@pytest.mark.slow
def test_lora_adapters_train_compiled_with_gradient_checkpointing(tiny_bert_dir, in_repo_root, tmp_path, monkeypatch):
    compiled, uncompiled = tmp_path / "compiled", tmp_path / "uncompiled"
    for run, options in [(compiled, COMPILED), (uncompiled, {})]:
        config = peft_config(tiny_bert_dir, gradient_checkpointing=True, **options)
        config["trainer"]["num_epochs"] = 1
        train_config(config, run, monkeypatch)
    assert_same_training(compiled, uncompiled)


def backbone(tiny_bert_dir: Path, **options: Any) -> Backbone:
    params = Params({"type": "pretrained_transformer", "model_name": str(tiny_bert_dir), **options})
    return Backbone.from_params(params, vocab=Vocabulary())


def test_compile_options_without_compile_fail_at_construction(tiny_bert_dir):
    with pytest.raises(ConfigurationError, match=r'compile_options needs "compile": true'):
        backbone(tiny_bert_dir, compile_options={"mode": "max-autotune"})


@pytest.mark.parametrize(
    "options, refusal",
    [({"mode": "fastest"}, "Unrecognized mode=fastest"), ({"backend": "nope"}, "Invalid backend: 'nope'")],
)
def test_options_torch_compile_refuses_fail_at_construction_naming_the_option(options, refusal, tiny_bert_dir):
    where = "pretrained_transformer backbone's compile_options: torch.compile refuses"
    with pytest.raises(ConfigurationError, match=f"{where} .*{refusal}"):
        backbone(tiny_bert_dir, compile=True, compile_options=options)
