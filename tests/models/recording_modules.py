"""
A small `Backbone` and `Head` that record what they receive, and batches whose every value tells which
instance it came from, for tests of how the multitask model routes batches.
"""

from typing import Any, Dict, List, Sequence

import torch
from allennlp.data import Vocabulary
from allennlp.models.heads import Head
from allennlp.modules import Backbone
from allennlp.training.metrics import CategoricalAccuracy

NUM_TOKENS = 50
LENGTH = 4
DIM = 3


class RecordingBackbone(Backbone):
    """
    Embeds `tokens` (batch, length) into `encoded` (batch, length, dim), each row on its own, and
    records each call's arguments. With `time_major`, returns `encoded` as (length, batch, dim), as a
    backbone that breaks the batch-first convention would.
    """

    def __init__(self, time_major: bool = False) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(NUM_TOKENS, DIM)
        self.time_major = time_major
        self.calls: List[Dict[str, Any]] = []

    def forward(self, tokens: torch.Tensor) -> Dict[str, torch.Tensor]:  # type: ignore
        self.calls.append({"tokens": tokens})
        encoded = self.embedding(tokens)
        return {"encoded": encoded.transpose(0, 1) if self.time_major else encoded}


class RecordingHead(Head):
    """
    Classifies each row into two classes from `encoded` and `features["ids"]`, counts its accuracy
    before returning its loss (as AllenNLP's heads do), and records each call's arguments.

    `loss` chooses the loss it returns: "mean" (cross-entropy), "per_row" (one loss per row, not a
    scalar) or "nan".
    """

    def __init__(self, vocab: Vocabulary, loss: str = "mean") -> None:
        super().__init__(vocab)
        self.projection = torch.nn.Linear(DIM, 2)
        self.accuracy = CategoricalAccuracy()
        self.loss = loss
        self.calls: List[Dict[str, Any]] = []

    def forward(  # type: ignore
        self, encoded: torch.Tensor, features: Dict[str, Any], metadata: List[Dict], label: torch.Tensor
    ) -> Dict[str, torch.Tensor]:
        self.calls.append({"encoded": encoded, "features": features, "metadata": metadata, "label": label})
        logits = self.projection(encoded.mean(dim=1)) + 0.01 * features["ids"].float().mean(dim=1, keepdim=True)
        self.accuracy(logits, label)
        per_row = torch.nn.functional.cross_entropy(logits, label, reduction="none")
        losses = {"mean": per_row.mean(), "per_row": per_row, "nan": per_row.mean() * float("nan")}
        return {"logits": logits, "loss": losses[self.loss]}

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        return {"accuracy": self.accuracy.get_metric(reset)}


def make_instance(row: int, task: str, variant: int = 0) -> Dict[str, Any]:
    """
    The inputs of one instance, nested in dicts, lists and tuples; every value is derived from `row`
    and `variant`, so that a value shows which instance (and which copy of the inputs) it came from.
    """
    code = 1000 * variant + row
    return {
        "tokens": (torch.arange(LENGTH) + code) % NUM_TOKENS,
        "features": {"ids": torch.tensor([code, -code]), "pair": [torch.tensor(code), (torch.full((2,), code),)]},
        "metadata": {"row": row, "variant": variant},
        "label": torch.tensor((row + variant) % 2),
        "task": task,
    }


def collate(instances: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """A batch of `instances`, shaped as AllenNLP batches them, with values that are not per instance."""
    features = [instance["features"] for instance in instances]
    return {
        "tokens": torch.stack([instance["tokens"] for instance in instances]),
        "features": {
            "ids": torch.stack([feature["ids"] for feature in features]),
            "pair": [
                torch.stack([feature["pair"][0] for feature in features]),
                (torch.stack([feature["pair"][1][0] for feature in features]),),
            ],
            "scale": torch.tensor(0.5),
            "name": "features",
        },
        "metadata": [instance["metadata"] for instance in instances],
        "label": torch.stack([instance["label"] for instance in instances]),
        "task": [instance["task"] for instance in instances],
    }


def make_batch(tasks: Sequence[str], variant: int = 0) -> Dict[str, Any]:
    """A batch with one instance of each of `tasks`, in order."""
    return collate([make_instance(row, task, variant) for row, task in enumerate(tasks)])


def assert_nested_equal(actual: Any, expected: Any) -> None:
    """The same nesting of dicts, lists and tuples, with equal tensors (shape and values) and equal leaves."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_nested_equal(actual[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for actual_item, expected_item in zip(actual, expected):
            assert_nested_equal(actual_item, expected_item)
    elif isinstance(expected, torch.Tensor):
        assert actual.shape == expected.shape and torch.equal(actual, expected), (actual, expected)
    else:
        assert actual == expected
