"""Trains a head alone on fixed toy encodings, to show that it learns."""

from typing import Any

import torch
from allennlp.models.heads import Head


def fit(head: Head, inputs: dict[str, Any], steps: int, lr: float = 0.05) -> list[float]:
    """Runs `steps` Adam steps of `head` on one batch; returns the loss before each step."""
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = head(**inputs)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
