"""
The representation-level Jacobian of a step (`RepresentationJacobian`) and the aggregators' weights from a
Gramian (`gramian_weights`), which the `jacobian_descent` callback composes at its `"representation"` level.
"""

import weakref
from typing import List, Tuple

import pytest
import torch
from torchjd.aggregation import MGDA, ConFIG, DualProj, GradDrop, Mean, Sum, UPGrad

from allennlp_multitask.training.callbacks.jacobian_aggregators import gramian_weights
from allennlp_multitask.training.callbacks.representation_jacobian import RepresentationJacobian

HEADS = ["a", "b", "c"]
PULLS = {"a": torch.tensor([1.0, 0.2, 0.0]), "b": torch.tensor([-1.0, 1.0, 0.5]), "c": torch.tensor([0.0, -0.3, 1.0])}


def step(weight: torch.Tensor) -> Tuple[RepresentationJacobian, List[torch.Tensor], torch.Tensor]:
    """
    Two batches through a linear backbone (`inputs @ weight`). On the first, head a reads rows 0-2, b rows
    1 and 3 (both 1), c all; on the second, a alone. Returns the step's Jacobian, the batches' outputs and
    the heads' dense rows, by plain autograd (each head's gradient on both outputs).
    """
    jacobian = RepresentationJacobian()
    outputs, dense = [], []
    for inputs, reads in [
        (torch.arange(8.0).view(4, 2), {"a": [0, 1, 2], "b": [1, 3], "c": None}),
        (torch.ones(2, 2), {"a": None}),
    ]:
        output = inputs @ weight
        gradients, rows = {}, []
        for head in HEADS:
            if head not in reads:
                rows.append(torch.zeros(output.numel()))
                continue
            read = output if reads[head] is None else output[reads[head]]
            loss = (read * PULLS[head]).sum() * (1 + HEADS.index(head))
            gradients[head] = [("encoded", reads[head], torch.autograd.grad(loss, read, retain_graph=True)[0])]
            rows.append(torch.autograd.grad(loss, output, retain_graph=True)[0].flatten())
        jacobian.add({"encoded": output}, gradients)
        outputs.append(output)
        dense.append(torch.stack(rows))
    return jacobian, outputs, torch.cat(dense, dim=1) / 2


def test_rows_span_the_steps_batches_and_their_gramian_is_theirs():
    jacobian, _, dense = step(torch.ones(2, 3, requires_grad=True))
    assert jacobian.heads == set(HEADS)
    assert torch.allclose(jacobian.rows(HEADS), dense)
    assert torch.allclose(jacobian.gramian(HEADS), dense @ dense.T)


def test_upgrads_combined_representation_gradient_goes_along_every_tasks_and_backpropagates_once():
    weight = torch.ones(2, 3, requires_grad=True)
    jacobian, outputs, rows = step(weight)
    assert float(rows[0] @ rows[1]) < 0

    weights = gramian_weights(UPGrad(), jacobian.gramian(HEADS))
    combined = weights @ rows
    parts = combined.split([output.numel() for output in outputs])
    gradients = [part.view_as(output) for output, part in zip(outputs, parts)]
    expected = torch.autograd.grad(outputs, weight, gradients, retain_graph=True)
    jacobian.backward(HEADS, weights, [weight])

    for row in rows:
        assert float(combined @ row) >= -1e-6
    assert torch.allclose(weight.grad, expected[0])
    assert not jacobian.heads  # the graphs are let go


@pytest.mark.parametrize("aggregator", [UPGrad(), MGDA(), DualProj(), Mean(), Sum()], ids=repr)
def test_the_gramians_weights_aggregate_as_the_aggregator_does(aggregator):
    rows = torch.tensor([[1.0, 0.2, 0.0, 3.0], [-1.0, 1.0, 0.5, 0.0], [0.3, -2.0, 1.0, 1.0]])
    assert torch.allclose(gramian_weights(aggregator, rows @ rows.T) @ rows, aggregator(rows), atol=1e-5)


@pytest.mark.parametrize("aggregator", [ConFIG(), GradDrop()], ids=repr)
def test_aggregators_that_need_the_rows_get_no_weights_from_a_gramian(aggregator):
    assert gramian_weights(aggregator, torch.eye(2)) is None


def test_an_aggregator_that_needs_the_rows_gets_them_and_its_aggregation_backpropagates():
    weight = torch.ones(2, 3, requires_grad=True)
    jacobian, outputs, _ = step(weight)
    combined = ConFIG()(jacobian.rows(HEADS))
    parts = combined.split([output.numel() for output in outputs])
    gradients = [part.view_as(output) for output, part in zip(outputs, parts)]
    expected = torch.autograd.grad(outputs, weight, gradients, retain_graph=True)

    jacobian.backward_combined(combined, [weight])

    assert torch.allclose(weight.grad, expected[0])


def test_the_rows_are_let_go_before_the_backward_pass_through_the_backbone():
    # A row is as large as what its head read of the outputs: holding them through the backbone's
    # backward pass (where plain training's peak is) would add that much to the step's peak memory.
    weight = torch.ones(2, 3, requires_grad=True)
    output = torch.arange(8.0).view(4, 2) @ weight
    rows = {"a": torch.ones(3, 3), "b": torch.full((1, 3), -1.0)}
    jacobian = RepresentationJacobian()
    jacobian.add({"encoded": output}, {"a": [("encoded", [0, 1, 2], rows["a"])], "b": [("encoded", [3], rows["b"])]})
    held = [weakref.ref(row) for row in rows.values()]
    del rows
    alive_in_backward = []
    weight.register_hook(lambda gradient: alive_in_backward.extend(row() is not None for row in held))

    jacobian.backward(["a", "b"], torch.tensor([1.0, 2.0]), [weight])

    assert alive_in_backward == [False, False]
    inputs = torch.arange(8.0).view(4, 2)
    combined = torch.tensor([[1.0] * 3] * 3 + [[-2.0] * 3])
    assert torch.allclose(weight.grad, inputs.T @ combined)
