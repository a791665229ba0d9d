"""
The `jacobian_descent` trainer callback under AllenNLP's own trainer: the update the backbone gets, on
constructed cases whose task gradients are known, and against plain training.
"""

import copy
import json
import logging
from typing import Dict, List

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common import Lazy
from allennlp.common.checks import ConfigurationError
from allennlp.data import Batch, Instance
from torchjd.aggregation import UPGrad

from allennlp_multitask import MultiTaskModel
from allennlp_multitask.models import UncertaintyLossWeighting
from allennlp_multitask.training.callbacks import JacobianDescentCallback
from allennlp_multitask.training.callbacks.jacobian_descent import LEVELS
from tests.conftest import REPO_ROOT
from tests.models.conll_example import conll_model, read_instances
from tests.models.test_partial_labels import sentences
from tests.training.callbacks.trainer_setup import classifier_model, direction_model, instances, train

# Head "a" pulls the backbone along (1, 0.1), "b" along (-1, 1): with a weighing 10, their gradients
# conflict (inner product -9), and their sum (9, 2) goes against b's.
DIRECTIONS = {"a": (1.0, 0.1, 0.0, 0.0), "b": (-1.0, 1.0, 0.0, 0.0)}
WEIGHTS = {"a": 10.0}
JACOBIAN_DESCENT_EXAMPLE = REPO_ROOT / "examples" / "conll_pos_ner_jacobian_descent.jsonnet"


def backbone_vector(model: MultiTaskModel) -> torch.Tensor:
    return torch.cat([parameter.detach().flatten() for parameter in model.backbone.parameters()])


def backbone_update(model: MultiTaskModel, batches: List[Instance], **training) -> torch.Tensor:
    """The gradient the backbone got in one step of SGD with learning rate 1: what the step subtracted."""
    before = backbone_vector(model)
    train(model, batches, **training)
    return before - backbone_vector(model)


def task_gradients(model: MultiTaskModel, batch: List[Instance], weights: Dict[str, float]) -> Dict[str, torch.Tensor]:
    """Each head's weighted loss's gradient on the backbone, on `batch`, by plain autograd."""
    tensors = Batch(batch)
    tensors.index_instances(model.vocab)
    outputs = model(**tensors.as_tensor_dict())
    parameters = list(model.backbone.parameters())
    gradients = {}
    for head in DIRECTIONS:
        loss = weights.get(head, 1.0) * outputs[f"{head}_loss"]
        gradients[head] = torch.cat([g.flatten() for g in torch.autograd.grad(loss, parameters, retain_graph=True)])
    return gradients


def test_upgrad_moves_the_backbone_along_every_tasks_gradient_where_the_sum_goes_against_one():
    batch = instances(["a", "b", "a", "b"])
    gradients = task_gradients(direction_model(DIRECTIONS, loss_weights=WEIGHTS), batch, WEIGHTS)
    assert float(gradients["a"] @ gradients["b"]) < 0

    plain = backbone_update(direction_model(DIRECTIONS, loss_weights=WEIGHTS), batch, batch_size=4)
    summed = backbone_update(
        direction_model(DIRECTIONS, loss_weights=WEIGHTS), batch, batch_size=4, aggregator={"type": "sum"}
    )
    upgrad = backbone_update(
        direction_model(DIRECTIONS, loss_weights=WEIGHTS), batch, batch_size=4, aggregator={"type": "upgrad"}
    )

    assert torch.allclose(summed, plain, atol=1e-6)
    assert float(plain @ gradients["b"]) < 0
    assert float(upgrad.norm()) > 0.1 * float(plain.norm())
    for head, gradient in gradients.items():
        assert float(upgrad @ gradient) >= -1e-5, head


def test_every_step_reports_the_conflict_of_its_task_gradients_as_training_metrics():
    batch = instances(["a", "b"] * 4)
    gradients = task_gradients(direction_model(DIRECTIONS, loss_weights=WEIGHTS), batch[:2], WEIGHTS)
    cosine = float(gradients["a"] @ gradients["b"] / (gradients["a"].norm() * gradients["b"].norm()))

    metrics = train(direction_model(DIRECTIONS, loss_weights=WEIGHTS), batch, batch_size=2, aggregator={"type": "sum"})

    # The direction heads' gradients do not change as the backbone trains: every step conflicts alike.
    assert metrics["training_gradient_conflict_share"] == 1.0
    assert metrics["training_gradient_cosine_mean"] == pytest.approx(cosine, abs=1e-6)


def test_an_accumulation_step_has_one_row_per_task_summed_over_its_batches():
    # Batches of one instance: a, b, a in one step. A row per batch would weigh a twice in UPGrad's
    # mean of projected rows, and summing without dividing by the step's batches would triple the update.
    batches = instances(["a", "b", "a"])
    gradients = task_gradients(direction_model(DIRECTIONS), batches[:2], {})
    expected = UPGrad()(torch.stack([2 * gradients["a"], gradients["b"]]) / 3)

    update = backbone_update(
        direction_model(DIRECTIONS), batches, batch_size=1, num_gradient_accumulation_steps=3, aggregator="upgrad"
    )

    assert torch.allclose(update, expected, atol=1e-6)


@pytest.mark.parametrize("level", LEVELS)
def test_sum_trains_as_plain_training_with_mixed_and_single_task_batches_accumulation_and_a_regularizer(level):
    # CoNLL sentences feed two heads (pos, ner), topic questions one; steps of two batches each see all
    # three. Uncertainty weighting puts learnable parameters in each head's loss term.
    model = conll_model({"model.regularizer": {"regexes": [[".*", {"type": "l2", "alpha": 0.01}]]}})
    model._loss_weighting = UncertaintyLossWeighting(model.active_heads, initial_log_variance=0.5)
    conll, topic = read_instances("conll"), read_instances("topic")
    batches = conll[:4] + topic[:4] + conll[4:8] + topic[4:8]
    options = {"batch_size": 4, "num_gradient_accumulation_steps": 2, "lr": 0.1}
    plain, summed = copy.deepcopy(model), copy.deepcopy(model)

    train(plain, batches, **options)
    train(summed, batches, aggregator={"type": "sum"}, level=level, **options)

    trained = dict(summed.named_parameters())
    assert {name for name, _ in model.named_parameters()} == set(trained)
    for name, parameter in plain.named_parameters():
        assert torch.allclose(trained[name], parameter, atol=1e-6), name
        if parameter.requires_grad:
            assert not torch.equal(parameter, dict(model.named_parameters())[name]), name


@pytest.mark.parametrize("level", LEVELS)
def test_sum_trains_as_plain_training_on_partial_labels(level):
    # NER tags on some sentences of the first two batches, none of the third's: a head's rows are those
    # of its labelled sentences, and a batch without any adds no row for it.
    batches = sentences([1, 2, 5, 8, 9, 10, 11], count=12)
    model = conll_model()
    plain, summed = copy.deepcopy(model), copy.deepcopy(model)

    train(plain, batches, batch_size=4, lr=0.1)
    train(summed, batches, batch_size=4, lr=0.1, aggregator={"type": "sum"}, level=level)

    trained = dict(summed.named_parameters())
    for name, parameter in plain.named_parameters():
        assert torch.allclose(trained[name], parameter, atol=1e-6), name


@pytest.mark.parametrize("level", LEVELS)
def test_under_a_gradient_scaler_the_rows_are_unscaled_and_steps_that_overflow_are_skipped(level):
    # float16's gradient scaler as the trainer's, here the CPU's (torch.amp.GradScaler("cpu")), which
    # works as CUDA's: Jacobian descent under it trains as without it, and skips the steps whose scaled
    # gradients overflow, as the scaler does, leaving the model as it was.
    batches = instances(["a", "b"] * 4)
    unscaled, scaled, overflowing = classifier_model(), classifier_model(), classifier_model()
    initial = copy.deepcopy(dict(overflowing.named_parameters()))
    options = {"batch_size": 2, "aggregator": "upgrad", "level": level, "lr": 0.5}

    train(unscaled, batches, **options)
    train(scaled, batches, grad_scaler=torch.amp.GradScaler("cpu", init_scale=2.0**10), **options)
    train(overflowing, batches, grad_scaler=torch.amp.GradScaler("cpu", init_scale=float("inf")), **options)

    trained = dict(scaled.named_parameters())
    for name, parameter in unscaled.named_parameters():
        assert torch.allclose(trained[name], parameter, atol=1e-6), name
    assert any(not torch.equal(parameter, initial[name]) for name, parameter in unscaled.named_parameters())
    assert all(torch.equal(parameter, initial[name]) for name, parameter in overflowing.named_parameters())


@pytest.mark.parametrize("level", LEVELS)
def test_a_step_with_one_task_trains_as_plain_training_and_says_so_once(caplog, level):
    batches = instances(["a", "b", "a", "b"])
    plain, upgrad = classifier_model(), classifier_model()

    train(plain, batches, batch_size=1, lr=0.1)
    with caplog.at_level(logging.INFO, logger="allennlp_multitask"):
        metrics = train(upgrad, batches, batch_size=1, lr=0.1, aggregator={"type": "upgrad"}, level=level)

    for (name, parameter), trained in zip(plain.named_parameters(), upgrad.parameters()):
        assert torch.allclose(trained, parameter, atol=1e-6), name
    said = [record for record in caplog.records if "nothing to aggregate" in record.getMessage()]
    assert len(said) == 1
    assert not any("gradient_conflict_share" in key for key in metrics)


@pytest.mark.parametrize("level", LEVELS)
def test_heads_that_read_the_same_instances_conflict_and_upgrad_removes_the_conflict_at_each_level(level):
    # One task served by both heads: at the representation level too, their gradients conflict.
    directions = {"a": DIRECTIONS["a"], "b": DIRECTIONS["b"]}
    batch = instances(["t"] * 4)
    options = {"loss_weights": WEIGHTS, "task_heads": {"t": ["a", "b"]}}
    gradients = task_gradients(direction_model(directions, **options), batch, WEIGHTS)
    plain = backbone_update(direction_model(directions, **options), batch, batch_size=4)
    assert float(plain @ gradients["b"]) < 0

    metrics = train(direction_model(directions, **options), batch, batch_size=4, aggregator="sum", level=level)
    upgrad = backbone_update(
        direction_model(directions, **options), batch, batch_size=4, aggregator="upgrad", level=level
    )

    prefix = "representation_" if level == "representation" else ""
    assert metrics[f"training_{prefix}gradient_conflict_share"] == 1.0
    assert metrics[f"training_{prefix}gradient_cosine_mean"] < 0
    assert float(upgrad.norm()) > 0.1 * float(plain.norm())
    for head, gradient in gradients.items():
        assert float(upgrad @ gradient) >= -1e-5, head


def test_with_identical_heads_the_representation_level_trains_as_the_parameters_level():
    def model() -> MultiTaskModel:
        identical = classifier_model(task_heads={"t": ["a", "b"]})
        identical._heads["b"].load_state_dict(identical._heads["a"].state_dict())
        return identical

    batches = instances(["t"] * 6)
    trained = {}
    for level in LEVELS:
        trained[level] = model()
        options = {"num_gradient_accumulation_steps": 3, "aggregator": "upgrad", "level": level}
        train(trained[level], batches, batch_size=2, **options)

    exact = dict(trained["parameters"].named_parameters())
    for name, parameter in trained["representation"].named_parameters():
        assert torch.allclose(parameter, exact[name], atol=1e-6), name
    assert not torch.equal(backbone_vector(trained["representation"]), backbone_vector(model()))


def test_an_unknown_level_fails_when_the_callback_is_built():
    with pytest.raises(ConfigurationError, match=r"level must be one of \['parameters', 'representation'\]"):
        JacobianDescentCallback("unused", "upgrad", level="features")


def test_a_model_that_is_not_multitask_fails_before_training():
    model = classifier_model()
    with pytest.raises(ConfigurationError, match="needs a multitask model"):
        train(model._heads["a"], instances(["a"]), batch_size=1, aggregator="upgrad")


def test_a_model_leaving_out_the_backbones_outputs_fails_before_training():
    # TorchJD said only "`outputs` cannot be empty", at the first step.
    model = classifier_model(include_backbone_outputs=False)
    with pytest.raises(ConfigurationError, match=r"leaves out \(include_backbone_outputs: false\)"):
        train(model, instances(["a", "b"]), batch_size=2, aggregator="upgrad")


def test_heads_and_loss_weighting_get_their_ordinary_gradients():
    batches = instances(["a", "b", "a"])
    weighting = Lazy(UncertaintyLossWeighting)  # learnable log-variances in each head's loss term
    plain, upgrad = classifier_model(loss_weighting=weighting), classifier_model(loss_weighting=weighting)

    train(plain, batches, batch_size=3, lr=0.1)
    train(upgrad, batches, batch_size=3, lr=0.1, aggregator={"type": "upgrad"})

    trained = dict(upgrad.named_parameters())
    for name, parameter in plain.named_parameters():
        if not name.startswith("_backbone."):
            assert torch.allclose(trained[name], parameter, atol=1e-6), name
    assert not torch.allclose(backbone_vector(upgrad), backbone_vector(plain), atol=1e-4)


def test_the_example_config_trains_with_allennlp_and_reports_gradient_conflicts(in_repo_root, tmp_path):
    train_model_from_file(str(JACOBIAN_DESCENT_EXAMPLE), str(tmp_path), overrides=json.dumps({"trainer.num_epochs": 1}))
    for metrics_file in ["metrics.json", "metrics_epoch_0.json"]:
        metrics = json.loads((tmp_path / metrics_file).read_text())
        assert 0.0 <= metrics["training_gradient_conflict_share"] <= 1.0, metrics_file
        assert -1.0 <= metrics["training_gradient_cosine_mean"] <= 1.0, metrics_file
        assert "validation_gradient_conflict_share" not in metrics
