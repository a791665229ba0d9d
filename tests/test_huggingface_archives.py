"""A model archived with one Hugging Face stack loads on another and predicts the same."""

import json
import math
from typing import Any

from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor

from tests.huggingface_goldens import (
    ARCHIVE,
    ARCHIVE_PREDICTIONS,
    archive_inputs,
)


def assert_close(observed: Any, recorded: Any, where: str = "") -> None:
    """`observed` is `recorded`, numbers within 1e-6, everything else equal."""
    if isinstance(recorded, float):
        assert math.isclose(observed, recorded, rel_tol=0, abs_tol=1e-6), (where, observed, recorded)
    elif isinstance(recorded, dict):
        assert observed.keys() == recorded.keys(), where
        for key, value in recorded.items():
            assert_close(observed[key], value, f"{where}.{key}")
    elif isinstance(recorded, list):
        assert len(observed) == len(recorded), where
        for index, (mine, theirs) in enumerate(zip(observed, recorded)):
            assert_close(mine, theirs, f"{where}[{index}]")
    else:
        assert observed == recorded, where


def test_archive_trained_on_transformers_4_49_predicts_the_same(in_repo_root):
    """
    archive/trained_on_transformers_4_49.tar.gz was trained with `allennlp train` on transformers 4.49
    (a `pretrained_transformer` tokenizer, indexer and backbone, `huggingface_adamw`,
    `slanted_triangular`); its config names the tiny BERT relative to the repository root.
    """
    predictor = Predictor.from_archive(load_archive(str(ARCHIVE)))
    inputs = archive_inputs()
    observed = json.loads(json.dumps([predictor.predict_json(json_input) for json_input in inputs]))
    # Outputs name their task and echo the input's id, which the recorded predictions predate.
    assert [(output.pop("task"), output.pop("id", None)) for output in observed] == [
        (json_input["task"], json_input.get("id")) for json_input in inputs
    ]
    assert_close(observed, json.loads(ARCHIVE_PREDICTIONS.read_text()))
