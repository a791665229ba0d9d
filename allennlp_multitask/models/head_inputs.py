"""
What each head of a multitask model read of the backbone's outputs in a forward pass: for training that
differentiates each head's loss with respect to the backbone's outputs (the `jacobian_descent` callback's
representation level) without a backward pass per head through the other heads' parts of the batch.
"""

from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

import torch

from allennlp_multitask.models.routing import HeadRows


class HeadInput(NamedTuple):
    """
    A backbone output as one head received it: `tensor` is `output`'s rows `rows` (all of them if `None`),
    which the head's forward took as an argument.
    """

    output: str
    rows: Optional[List[int]]
    tensor: torch.Tensor


def own_backbone_inputs(
    head_rows: HeadRows,
    head_plans: Mapping[str, List[Tuple[str, str]]],
    arguments: Dict[str, Dict[str, Any]],
    backbone_outputs: Mapping[str, Any],
    available: Mapping[str, Any],
) -> Dict[str, List[HeadInput]]:
    """
    Gives each head, in `arguments` (made from `available` by `head_plans`), its own view of each backbone
    output that needs a gradient (a tensor that requires one; an argument of the batch's own that
    shadows a backbone output is none), and returns them by head. Each head's part of a backward pass
    then stops at its own tensors, apart from every other head's, even where heads read the same rows.
    """
    inputs: Dict[str, List[HeadInput]] = {}
    for head, plan in head_plans.items():
        inputs[head] = []
        for key, name in plan:
            output = backbone_outputs.get(key)
            if isinstance(output, torch.Tensor) and output.requires_grad and available[key] is output:
                own = arguments[head][name] = arguments[head][name].view_as(arguments[head][name])
                inputs[head].append(HeadInput(key, head_rows.rows_of(head), own))
    return inputs
