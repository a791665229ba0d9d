"""Partial labels from a config (tests/fixtures/partial_labels): `allennlp train`, then `allennlp predict`."""

import json
from pathlib import Path

import pytest

from tests.commands.runs import allennlp_process, read_json_lines

FIXTURES = "tests/fixtures/partial_labels/"


@pytest.mark.slow
@pytest.mark.subprocess
def test_partially_labelled_conll_and_json_train_and_predict_with_every_head(tmp_path: Path):
    run = tmp_path / "run"
    allennlp_process("train", FIXTURES + "config.jsonnet", "-s", str(run))
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("pos_accuracy", "ner_f1-measure-overall", "sentiment_accuracy", "score_pearson"):
        assert f"training_{key}" in metrics and f"validation_{key}" in metrics, key
    # The placeholders of absent labels add no label to any namespace.
    assert (run / "vocabulary" / "sentiment_labels.txt").read_text().split() == ["negative", "positive"]
    assert "_" not in (run / "vocabulary" / "ner_tags.txt").read_text().split()

    predictions = tmp_path / "predictions.jsonl"
    allennlp_process(
        "predict", str(run / "model.tar.gz"), FIXTURES + "predict.jsonl", "--output-file", str(predictions), "--silent"
    )
    conll, review, labelled_review = read_json_lines(predictions)
    assert len(conll["pos_tags"]) == len(conll["ner_tags"]) == 5
    for output in (review, labelled_review):
        assert output["sentiment_label"] in ("negative", "positive")
        assert isinstance(output["score_prediction"], float)
