"""
The representation-level Jacobian of a step (`RepresentationJacobian`) and the aggregators' weights from a
Gramian (`gramian_weights`), which the `jacobian_descent` callback composes at its `"representation"` level.
"""
from typing import List, Tuple

import pytest
import torch
from torchjd.aggregation import MGDA, ConFIG, DualProj, GradDrop, Mean, Sum, UPGrad

from allennlp_multitask.training.jacobian_aggregators import gramian_weights
from allennlp_multitask.training.representation_jacobian import RepresentationJacobian

HEADS = ["a", "b"]


def step(weight: torch.Tensor) -> Tuple[RepresentationJacobian, List[torch.Tensor]]:
    """
    Two batches through a linear backbone (`inputs @ weight`): heads a and b, which pull against each other,
    on the first; a alone on the second. Returns their Jacobian and the two batches' outputs' graphs.
    """
    jacobian = RepresentationJacobian()
    pulls = {"a": torch.tensor([1.0, 0.2, 0.0]), "b": torch.tensor([-1.0, 1.0, 0.5])}
    outputs = []
    for inputs, heads in [(torch.arange(8.0).view(4, 2), HEADS), (torch.ones(2, 2), ["a"])]:
        output = inputs @ weight
        losses = [(output * pulls[head]).sum() for head in heads]
        rows = torch.stack([torch.autograd.grad(loss, output, retain_graph=True)[0] for loss in losses])
        jacobian.add(heads, [output], [rows])
        outputs.append(output)
    return jacobian, outputs


def test_rows_span_the_steps_batches_and_their_gramian_is_theirs():
    jacobian, outputs = step(torch.ones(2, 3, requires_grad=True))
    rows = jacobian.rows(HEADS)
    assert jacobian.heads == {"a", "b"}
    assert rows.shape == (2, outputs[0].numel() + outputs[1].numel())
    assert torch.equal(rows[1, outputs[0].numel() :], torch.zeros(outputs[1].numel()))  # b had no loss there
    assert torch.allclose(jacobian.gramian(HEADS), rows @ rows.T)


def test_upgrads_combined_representation_gradient_goes_along_every_tasks_and_backpropagates_once():
    weight = torch.ones(2, 3, requires_grad=True)
    jacobian, outputs = step(weight)
    rows = jacobian.rows(HEADS)
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
