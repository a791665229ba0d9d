"""
The Jacobian of a training step at the level of the shared representation: each head's gradient with
respect to the backbone's outputs that the heads read, batch by batch, and the one backward pass through
the backbone that carries their aggregation. For the `jacobian_descent` callback's `"representation"` level.
"""

import itertools
from typing import Dict, List, Mapping, NamedTuple, Optional, Set, Tuple

import torch

# A head's gradient on what it read of a backbone output: the output's name, the rows the head read
# (`None`: all), and the gradient on them.
HeadGradient = Tuple[str, Optional[List[int]], torch.Tensor]


class _Group(NamedTuple):
    """The heads of a batch that read the same rows of one output, and their gradients there, one row each."""

    output: str
    rows: Optional[List[int]]
    heads: List[str]
    gradients: torch.Tensor  # (len(heads), rows, size of one row of the output)


class _Batch(NamedTuple):
    outputs: Dict[str, torch.Tensor]
    groups: List[_Group]


class RepresentationJacobian:
    """
    The rows of one step's heads on the backbone's outputs, over the step's batches: a head's row is its
    gradients on every batch's outputs, one batch after another (zero where it read nothing: other heads'
    instances, batches it had no loss in), so that the step's rows, like the backbone's own Jacobian,
    span all its batches. Each row is kept as the head read it (only its instances' part of each output):
    a mixed batch's rows cost the size of the outputs, not that times the number of heads.

    Each batch's graph is kept from `add` until `backward`, which sends each batch its part of the
    combined gradient back through the backbone from its outputs, and lets the rows go as it uses them.
    """

    def __init__(self) -> None:
        self._batches: List[_Batch] = []

    @property
    def heads(self) -> Set[str]:
        """The heads with a row in the step so far."""
        return {head for batch in self._batches for group in batch.groups for head in group.heads}

    def add(self, outputs: Mapping[str, torch.Tensor], gradients: Dict[str, List[HeadGradient]]) -> None:
        """
        Adds a batch: the backbone's `outputs` (by name), and by head, the head's gradients on what it read
        of them (kept in float32: under mixed precision, the outputs and gradients may be of lower precision).
        """
        grouped: Dict[Tuple[str, Optional[Tuple[int, ...]]], Tuple[List[str], List[torch.Tensor]]] = {}
        for head, head_gradients in gradients.items():
            for output, rows, gradient in head_gradients:
                key = (output, None if rows is None else tuple(rows))
                group_heads, group_gradients = grouped.setdefault(key, ([], []))
                group_heads.append(head)
                group_gradients.append(gradient.reshape(len(gradient), -1).float())
        groups = [
            _Group(output, None if rows is None else list(rows), group_heads, _stacked(group_gradients))
            for (output, rows), (group_heads, group_gradients) in grouped.items()
        ]
        read = {group.output: outputs[group.output] for group in groups}
        self._batches.append(_Batch(read, groups))

    def clear(self) -> None:
        self._batches.clear()

    def gramian(self, heads: List[str]) -> torch.Tensor:
        """
        The Gramian of the step's rows of `heads` (every head that had a loss in the step, in order),
        each row divided by the step's number of batches, as the loss is.
        """
        position = {head: index for index, head in enumerate(heads)}
        # The Gramian's entries by blocks (of heads that read the same rows, or rows in common), put in
        # place at once: a batch has a block per head or so.
        rows: List[int] = []
        columns: List[int] = []
        blocks: List[torch.Tensor] = []

        def add(one: List[str], other: List[str], block: torch.Tensor) -> None:
            rows.extend(position[head] for head in one for _ in other)
            columns.extend(position[head] for _ in one for head in other)
            blocks.append(block.flatten())

        for batch in self._batches:
            for group in batch.groups:
                flat = group.gradients.flatten(1)
                add(group.heads, group.heads, flat @ flat.T)
            for one, other in itertools.combinations(batch.groups, 2):
                cross = _cross_products(one, other)
                if cross is not None:
                    add(one.heads, other.heads, cross)
                    add(other.heads, one.heads, cross.T)
        values = torch.cat(blocks)
        gramian = values.new_zeros(len(heads), len(heads))
        gramian.index_put_((torch.tensor(rows), torch.tensor(columns)), values, accumulate=True)
        return gramian / len(self._batches) ** 2

    def rows(self, heads: List[str]) -> torch.Tensor:
        """
        The step's rows of `heads`, `(len(heads), size of every batch's outputs)`, scaled as `gramian`'s,
        for the aggregators that need the rows themselves.
        """
        position = {head: index for index, head in enumerate(heads)}
        parts: List[torch.Tensor] = []
        for batch in self._batches:
            dense = {
                name: output.new_zeros(len(heads), *output.shape, dtype=torch.float32)
                for name, output in batch.outputs.items()
            }
            for group in batch.groups:
                for head, gradient in zip(group.heads, group.gradients):
                    _add_rows(dense[group.output][position[head]], group.rows, gradient, 1.0)
            parts.extend(part.flatten(1) for part in dense.values())
        return torch.cat(parts, dim=1) / len(self._batches)

    def backward(self, heads: List[str], weights: torch.Tensor, parameters: List[torch.nn.Parameter]) -> None:
        """
        Sends the combination of the step's rows of `heads` with `weights` (one per head) back through each
        batch's graph to `parameters`, adding to their gradients, and lets the graphs go.
        """
        # As numbers (read from the device: the metrics and most aggregators have read the Gramian already),
        # which weigh each row as it is added, without a weighted copy of it.
        weight_of = dict(zip(heads, (weights / len(self._batches)).tolist()))
        while self._batches:
            outputs, combined = _combined_gradients(self._batches.pop(0), weight_of)
            torch.autograd.backward(outputs, combined, inputs=parameters)

    def backward_combined(self, combined: torch.Tensor, parameters: List[torch.nn.Parameter]) -> None:
        """
        Sends `combined`, a combination of the step's `rows`, back through each batch's graph to
        `parameters`, adding to their gradients, and lets the graphs go.
        """
        sizes = [output.numel() for batch in self._batches for output in batch.outputs.values()]
        parts = iter(combined.split(sizes))
        while self._batches:
            outputs = list(self._batches.pop(0).outputs.values())
            gradients = [next(parts).view_as(output).to(output.dtype) for output in outputs]
            torch.autograd.backward(outputs, gradients, inputs=parameters)


def _cross_products(one: _Group, other: _Group) -> Optional[torch.Tensor]:
    """The inner products of two groups' rows on the rows of their output that both read; `None` if none."""
    if one.output != other.output:
        return None
    if one.rows is None or other.rows is None:
        common = other.rows if one.rows is None else one.rows
    elif one.rows[-1] < other.rows[0] or other.rows[-1] < one.rows[0]:
        return None  # Apart, as the heads of a batch of one task each are.
    else:
        common = sorted(set(one.rows) & set(other.rows))
    if not common:
        return None
    parts = []
    for group in (one, other):
        gradients = group.gradients
        if len(common) != gradients.size(1):
            positions = {row: position for position, row in enumerate(group.rows or range(gradients.size(1)))}
            gradients = gradients[:, [positions[row] for row in common]]
        parts.append(gradients.flatten(1))
    return parts[0] @ parts[1].T


def _combined_gradients(batch: _Batch, weight_of: Dict[str, float]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """
    The batch's outputs and the combination of its rows on each, with each head's weight (`weight_of`);
    the rows are let go as they are used, so that they and the combination are never both whole.
    """
    combined = {name: torch.zeros_like(output) for name, output in batch.outputs.items()}
    while batch.groups:
        group = batch.groups.pop()
        for head, gradient in zip(group.heads, group.gradients):
            _add_rows(combined[group.output], group.rows, gradient, weight_of[head])
    return list(batch.outputs.values()), list(combined.values())


def _add_rows(dense: torch.Tensor, rows: Optional[List[int]], values: torch.Tensor, weight: float) -> None:
    """
    Adds `values` times `weight`, one row's worth after another, to the rows `rows` of `dense` (all of
    them if `None`), in `dense`'s dtype.
    """
    values = values.view(-1, *dense.shape[1:]).to(dense.dtype)
    if rows is None:
        dense.add_(values, alpha=weight)
    else:
        dense.index_add_(0, torch.tensor(rows, device=dense.device), values, alpha=weight)


def _stacked(gradients: List[torch.Tensor]) -> torch.Tensor:
    """The gradients one after another (a copy only if there are several: most groups have one head)."""
    return gradients[0].unsqueeze(0) if len(gradients) == 1 else torch.stack(gradients)
