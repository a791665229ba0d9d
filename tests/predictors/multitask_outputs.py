"""Inputs for the bundled example's model, and checks of the multitask predictor's outputs."""

from typing import Dict, Set

import numpy

# Each position holds a different label, so outputs out of input order cannot pass.
EXAMPLE_INPUTS = [
    {"task": "sentiment", "sentence": "the hotel was truly wonderful"},
    {"task": "topic", "sentence": "what is the best oven for pasta ?"},
    {"task": "sentiment", "sentence": "that book was rather dreadful"},
    {"task": "topic", "sentence": "how do i pick a good coach for my team ?"},
]
EXAMPLE_LABELS = ["positive", "cooking", "negative", "sports"]


def head_keys(output: Dict) -> Set[str]:
    """The keys of head outputs (those of the heads these tests use)."""
    return {key for key in output if key.split("_")[0] in {"sentiment", "topic", "mean"}}


def assert_same_head_outputs(actual: Dict, expected: Dict) -> None:
    """Both have the same head outputs: equal labels, and numbers equal up to float noise."""
    assert head_keys(actual) == head_keys(expected)
    for key in head_keys(expected):
        if isinstance(expected[key], str):
            assert actual[key] == expected[key], key
        else:
            numpy.testing.assert_allclose(actual[key], expected[key], atol=1e-6, err_msg=key)
