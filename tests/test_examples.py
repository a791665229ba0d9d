"""Every configuration under examples/ trains with AllenNLP's own training code."""

import json
import re
from pathlib import Path

import pytest
from allennlp.commands.train import train_model_from_file
from allennlp.common import Params

from tests.conftest import REPO_ROOT

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.jsonnet"))


@pytest.mark.parametrize("config", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_trains_one_epoch_with_metrics_for_every_head(
    config: Path, tmp_path: Path, in_repo_root, tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    # The transformer example reads its model from the environment: here a tiny BERT saved on disk.
    monkeypatch.setenv("TRANSFORMER_MODEL", str(tiny_bert_dir))
    monkeypatch.setenv("TRANSFORMER_HIDDEN_SIZE", "16")
    train_model_from_file(str(config), str(tmp_path), overrides=json.dumps({"trainer.num_epochs": 1}))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for head in Params.from_file(str(config))["model"]["heads"]:
        assert any(key.startswith(f"validation_{head}_") for key in metrics), (head, sorted(metrics))
    assert (tmp_path / "model.tar.gz").exists()


@pytest.mark.slow
def test_the_quick_start_prints_its_summary_and_little_else(quick_start_run):
    _, finished = quick_start_run
    # Besides the progress bars (loading, then training and validation each epoch, with their metrics): the
    # script's summary, where AllenNLP at its default level printed some 450 lines of log.
    lines = [
        line
        for line in (finished.stdout + finished.stderr).splitlines()
        if line.strip() and not re.search(r"\d+it \[|\d+/\d+ \[", line)
    ]
    assert len(lines) == 9, "\n".join(lines)
    assert lines[0].startswith("Validation metrics of the archived model")
