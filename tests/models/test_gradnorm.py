"""
GradNorm: weights learned from the heads' gradient norms on the last shared layer, against the paper's
formula on the CoNLL example model, and resumed exactly (on two workers: test_loss_weighting_distributed.py).
"""

import pytest
import torch
from allennlp.common.checks import ConfigurationError

from tests.commands.runs import SimulatedCrash, final_metrics
from tests.models.conll_example import CONLL_CONFIG, conll_model, read_instances, tensor_batch
from tests.models.test_scalarizer_weighting import train_run, train_steps

SHARED = "_backbone._text_field_embedder.token_embedder_tokens.weight"


def test_weights_follow_the_balancing_loss_gradient_and_add_up_to_the_heads():
    torch.manual_seed(0)
    model = conll_model({"model.loss_weighting": {"type": "gradnorm", "alpha": 1.5, "shared_parameter": SHARED}})
    batch = tensor_batch(model, read_instances("conll")[:4])
    weighting = model._loss_weighting
    outputs = model(**batch)
    losses = {head: outputs[f"{head}_loss"] for head in ("ner", "pos")}
    assert torch.allclose(outputs["loss"], losses["ner"] + losses["pos"])  # Weights of 1 at the start.
    # The paper's balancing loss on the first batch (ratios of 1): sum_i |G_i - mean(G)|, G_i = |dL_i/dW|.
    shared = dict(model.named_parameters())[SHARED]
    norms = [torch.autograd.grad(loss, shared, retain_graph=True)[0].norm() for loss in losses.values()]
    sign = torch.sign(norms[0] - norms[1])
    # The target mean(G) * r_i ** alpha is a constant: d/dw_i |w_i n_i - target| = sign(G_i - target) n_i.
    expected = torch.stack([sign * norms[0], -sign * norms[1]])
    outputs["loss"].backward()
    assert torch.allclose(weighting.weights.grad[:2], expected, rtol=1e-4)
    assert weighting.weights.grad[2] == 0.0  # Topic is not in the batch.
    train_steps(model, batch, 3)
    model(**batch)  # Rescales the weights after the last step.
    assert weighting.weights.sum().item() == pytest.approx(3.0)
    assert model.get_metrics()["pos_loss_weight"] != 1.0


@pytest.mark.parametrize(
    "config, message",
    [
        ({"type": "gradnorm", "alpha": -1}, "non-negative, finite alpha, got -1"),
        (
            {"type": "gradnorm", "shared_parameter": "encoder.weight"},
            "'encoder.weight' is not a parameter of the model",
        ),
    ],
)
def test_configuration_mistakes_fail_at_construction(config, message):
    with pytest.raises(ConfigurationError, match=message):
        conll_model({"model.loss_weighting": config})


@pytest.mark.slow
def test_a_crashed_run_resumes_as_if_never_stopped(in_repo_root, tmp_path, monkeypatch):
    # On the CoNLL example: its CoNLL batches feed two heads, which GradNorm balances (not one alone).
    weighting = {"type": "gradnorm"}
    train_run(tmp_path / "uninterrupted", monkeypatch, weighting, crash=False, config=CONLL_CONFIG)
    with pytest.raises(SimulatedCrash):
        train_run(tmp_path / "resumed", monkeypatch, weighting, crash=True, config=CONLL_CONFIG)
    train_run(tmp_path / "resumed", monkeypatch, weighting, "-r", crash=True, config=CONLL_CONFIG)
    metrics = final_metrics(tmp_path / "uninterrupted")
    assert metrics == final_metrics(tmp_path / "resumed")
    assert metrics["training_pos_loss_weight"] != 1.0
