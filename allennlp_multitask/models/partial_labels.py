"""
Partial labels, kept pure: which of each head's rows lack a label the head takes (the batch's
`absent_labels`, see `allennlp_multitask.data.absent_labels`), and how a head's outputs on its labelled and
unlabelled rows go back together in batch order.

A head runs twice on a batch where some of its rows lack its label: on the labelled rows with their labels
(loss and metrics over those rows only, as if the others were not in the batch) and on the unlabelled rows
without the labels they lack (predictions only).
"""

from typing import Any, Collection, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import torch

from allennlp_multitask.models.routing import HeadRows

Plan = List[Tuple[str, str]]


class LabelledParts(NamedTuple):
    """
    A batch's heads split by labels: `labelled` holds each head's rows with all its labels (and their
    plans, `labelled_plans`), `unlabelled` its rows that lack some, with plans (`unlabelled_plans`)
    without the labels any of them lacks.
    """

    labelled: HeadRows
    labelled_plans: Dict[str, Plan]
    unlabelled: HeadRows
    unlabelled_plans: Dict[str, Plan]

    def rows(self, head: str) -> Tuple[List[int], List[int]]:
        """The labelled and the unlabelled rows of `head`, each ascending."""
        return _rows_in(self.labelled, head), _rows_in(self.unlabelled, head)


def _rows_in(head_rows: HeadRows, head: str) -> List[int]:
    if head not in head_rows.heads:
        return []
    rows = head_rows.rows_of(head)
    return list(range(head_rows.batch_size)) if rows is None else rows


def split_by_labels(
    head_rows: HeadRows,
    head_plans: Mapping[str, Plan],
    absent: Sequence[Collection[str]],
    keep_empty: bool,
) -> Optional[LabelledParts]:
    """
    Splits each head's rows into those with every input its plan takes (`absent[row]` names the fields of
    a row that hold placeholders) and those without; `None` where no head has a row without. With
    `keep_empty`, a head with no labelled rows keeps an empty labelled part (so that it runs, and updates
    its metrics, on every distributed worker alike).
    """
    if not any(absent):
        return None
    labelled: Dict[str, List[int]] = {}
    unlabelled: Dict[str, List[int]] = {}
    unlabelled_plans: Dict[str, Plan] = {}
    for head, plan in head_plans.items():
        keys = {key for key, _ in plan}
        rows = _rows_in(head_rows, head)
        lacking = [row for row in rows if keys.intersection(absent[row])]
        if not lacking:
            labelled[head] = rows
            continue
        lacking_set = set(lacking)
        with_labels = [row for row in rows if row not in lacking_set]
        if with_labels or keep_empty:
            labelled[head] = with_labels
        unlabelled[head] = lacking
        missing = {key for row in lacking for key in absent[row]}
        unlabelled_plans[head] = [(key, name) for key, name in plan if key not in missing]
    if not unlabelled:
        return None
    batch_size = head_rows.batch_size
    return LabelledParts(
        HeadRows(labelled, batch_size),
        {head: head_plans[head] for head in labelled},
        HeadRows(unlabelled, batch_size),
        unlabelled_plans,
    )


def merge_rows(head: str, parts: Sequence[Tuple[List[int], Dict[str, Any]]]) -> Dict[str, Any]:
    """
    One head's outputs on its rows in batch order, from its outputs on disjoint parts of them (`(rows,
    outputs)` pairs, rows ascending; parts without rows are left out). Values with a row per instance of
    their part (tensors by their first dimension, lists and tuples by length) are put together in batch
    order; others come from the first part; keys that not every part has are left out.
    """
    parts = [(rows, outputs) for rows, outputs in parts if rows]
    if len(parts) == 1:
        return dict(parts[0][1])
    order = [row for rows, _ in parts for row in rows]
    positions = sorted(range(len(order)), key=order.__getitem__)
    in_order = positions == list(range(len(order)))
    merged: Dict[str, Any] = {}
    for key, first in parts[0][1].items():
        values = [outputs.get(key) for _, outputs in parts]
        if any(key not in outputs for _, outputs in parts):
            continue
        if all(_has_rows(value, len(rows)) for value, (rows, _) in zip(values, parts)):
            merged[key] = _merged(head, key, values, positions, in_order)
        else:
            merged[key] = first
    return merged


def _has_rows(value: Any, count: int) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dim() > 0 and value.size(0) == count
    return isinstance(value, (list, tuple)) and len(value) == count


def _merged(head: str, key: str, values: List[Any], positions: List[int], in_order: bool) -> Any:
    if isinstance(values[0], torch.Tensor):
        shapes = [tuple(value.shape[1:]) for value in values]
        if len(set(shapes)) != 1:
            raise ValueError(
                f"Head '{head}' gave its output '{key}' rows of shapes {shapes} on the instances with its "
                "labels and those without (partial labels): a head's outputs must have rows of one shape "
                "for a batch, whichever of its rows it is given."
            )
        joined = torch.cat(values)
        if in_order:
            return joined
        return joined.index_select(0, torch.tensor(positions, device=joined.device))
    joined_items = [item for value in values for item in value]
    return type(values[0])(joined_items[position] for position in positions)
