"""The `regression` head from a config: `labeled_text_json` with `numeric_labels`, trained, evaluated and predicted."""

import json
from pathlib import Path

import pytest

from tests.commands.runs import allennlp_process, read_json_lines

FIXTURES = "tests/fixtures/regression/"


@pytest.mark.slow
@pytest.mark.subprocess
def test_regression_trains_evaluates_and_predicts_from_a_config(tmp_path: Path):
    run = tmp_path / "run"
    allennlp_process("train", FIXTURES + "config.jsonnet", "-s", str(run))
    trained = json.loads((run / "metrics.json").read_text())
    assert trained["best_validation_rating_pearson"] > 0.5

    metrics = tmp_path / "metrics.json"
    validation = json.dumps({"rating": FIXTURES + "validation.jsonl"})
    allennlp_process("evaluate", str(run / "model.tar.gz"), validation, "--output-file", str(metrics))
    evaluated = json.loads(metrics.read_text())
    assert evaluated["rating_pearson"] == pytest.approx(trained["best_validation_rating_pearson"], abs=1e-5)

    predictions = tmp_path / "predictions.jsonl"
    allennlp_process(
        "predict", str(run / "model.tar.gz"), FIXTURES + "predict.jsonl", "--output-file", str(predictions), "--silent"
    )
    outputs = read_json_lines(predictions)
    assert [(output["id"], output["task"]) for output in outputs] == [("a", "rating"), ("b", "rating")]
    assert all(isinstance(output["rating_prediction"], float) for output in outputs)
    assert outputs[0]["rating_prediction"] > outputs[1]["rating_prediction"]
