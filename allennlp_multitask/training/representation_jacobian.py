"""
The Jacobian of a training step at the level of the shared representation: each head's gradient with
respect to the backbone's outputs that the heads read, batch by batch, and the one backward pass through
the backbone that carries their aggregation. For the `jacobian_descent` callback's `"representation"` level.
"""
from typing import List, Sequence, Set, Tuple

import torch


class RepresentationJacobian:
    """
    The rows of one step's heads on the backbone's outputs, over the step's batches: a head's row is its
    gradients on every batch's outputs one after another (zero on the batches it had no loss in), so
    that the step's rows, like the backbone's own Jacobian, span all its batches.

    Each batch's graph is kept from `add` until `backward`, which sends each batch its part of the
    combined gradient back through the backbone.
    """

    def __init__(self) -> None:
        # Per batch: its heads, the backbone's outputs they read, and their `(heads, outputs' size)` rows.
        self._batches: List[Tuple[List[str], List[torch.Tensor], torch.Tensor]] = []

    @property
    def heads(self) -> Set[str]:
        """The heads with a row in the step so far."""
        return {head for heads, _, _ in self._batches for head in heads}

    def add(self, heads: List[str], outputs: List[torch.Tensor], jacobians: Sequence[torch.Tensor]) -> None:
        """
        Adds a batch: its `heads` (one per row), the backbone's `outputs`, and `jacobians`, for each output
        the heads' gradients on it (`(len(heads), *output.shape)`).
        """
        rows = torch.cat([jacobian.flatten(1) for jacobian in jacobians], dim=1)
        self._batches.append((heads, outputs, rows))

    def clear(self) -> None:
        self._batches.clear()

    def gramian(self, heads: List[str]) -> torch.Tensor:
        """
        The Gramian of the step's rows of `heads` (every head that had a loss in the step, in order),
        each row divided by the step's number of batches, as the loss is.
        """
        gramian = None
        for batch_heads, _, rows in self._batches:
            positions = _positions(heads, batch_heads)
            part = rows.new_zeros(len(heads), len(heads))
            part[positions.unsqueeze(1), positions] = rows @ rows.T
            gramian = part if gramian is None else gramian + part
        assert gramian is not None, "a step without batches has no Gramian"
        return gramian / len(self._batches) ** 2

    def rows(self, heads: List[str]) -> torch.Tensor:
        """The step's rows of `heads`, `(len(heads), size of every batch's outputs)`, scaled as `gramian`'s."""
        parts = []
        for batch_heads, _, rows in self._batches:
            part = rows.new_zeros(len(heads), rows.size(1))
            part[_positions(heads, batch_heads)] = rows
            parts.append(part)
        return torch.cat(parts, dim=1) / len(self._batches)

    def backward(self, heads: List[str], weights: torch.Tensor, parameters: List[torch.nn.Parameter]) -> None:
        """
        Sends the combination of the step's rows of `heads` with `weights` (one per head) back through each
        batch's graph to `parameters`, adding to their gradients, and lets the graphs go.
        """
        scale = 1.0 / len(self._batches)
        combined = [weights[_positions(heads, batch_heads)] @ rows * scale for batch_heads, _, rows in self._batches]
        self.backward_combined(torch.cat(combined), parameters)

    def backward_combined(self, combined: torch.Tensor, parameters: List[torch.nn.Parameter]) -> None:
        """
        Sends `combined`, a combination of the step's `rows` (a gradient on every batch's outputs, one batch
        after another), back through each batch's graph to `parameters`, adding to their gradients, and
        lets the graphs go.
        """
        parts = combined.split([rows.size(1) for _, _, rows in self._batches])
        for (_, outputs, _), part in zip(self._batches, parts):
            pieces = part.split([output.numel() for output in outputs])
            gradients = [piece.view_as(output) for output, piece in zip(outputs, pieces)]
            torch.autograd.backward(outputs, grad_tensors=gradients, inputs=parameters)
        self._batches.clear()


def _positions(heads: List[str], batch_heads: List[str]) -> torch.Tensor:
    return torch.tensor([heads.index(head) for head in batch_heads])
