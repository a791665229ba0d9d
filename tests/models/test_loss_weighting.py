"""
The loss weighting strategies, each shown to change the combined loss as claimed: on fixed losses, on
the bundled CoNLL example model, and (dwa) under AllenNLP's trainer.
"""

import contextlib
import json
import math
from pathlib import Path

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common.checks import ConfigurationError
from allennlp.models.archival import archive_model, load_archive

from allennlp_multitask.models import DynamicWeightAverage, StaticLossWeighting, UncertaintyLossWeighting
from tests.conftest import REPO_ROOT
from tests.models.conll_example import CONLL_CONFIG, conll_model, conll_params, read_instances, tensor_batch

HEADS = ["a", "b", "c"]


def scalars(**losses: float) -> dict[str, torch.Tensor]:
    return {head: torch.tensor(value) for head, value in losses.items()}


def test_static_weights_weigh_heads_left_out_one():
    weighting = StaticLossWeighting(HEADS, {"b": 0.25})
    assert float(weighting(scalars(a=2.0, b=4.0, c=3.0))) == 2.0 + 0.25 * 4.0 + 3.0
    assert float(weighting(scalars(b=4.0))) == 1.0  # Heads without a loss in the batch add nothing.
    assert not weighting.reports_weights


def test_static_weights_configured_as_a_loss_weighting():
    model = conll_model({"model.loss_weighting": {"type": "static", "weights": {"pos": 0.25}}})
    outputs = model(**tensor_batch(model, read_instances("conll")[:4]))
    assert torch.allclose(outputs["loss"], 0.25 * outputs["pos_loss"] + outputs["ner_loss"])
    assert not [key for key in model.get_metrics() if key.endswith("_loss_weight")]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"model.loss_weights": {"pos": 2.0}, "model.loss_weighting": {"type": "dwa"}},
            "takes loss_weights or loss_weighting, not both",
        ),
        ({"model.loss_weights": {"chunk": 2.0}}, r"name \['chunk'\], which are not heads; heads: \['ner', 'pos'"),
        (
            {"model.loss_weighting": {"type": "static", "weights": {"chunk": 2.0}}},
            r"name \['chunk'\], which are not heads",
        ),
        ({"model.loss_weighting": {"type": "dwa", "temperature": 0}}, "dwa .* positive, finite temperature, got 0"),
        ({"model.loss_weighting": {"type": "dwa", "temperature": -1.5}}, "positive, finite temperature, got -1.5"),
    ],
)
def test_configuration_mistakes_fail_at_construction(overrides, message):
    with pytest.raises(ConfigurationError, match=message):
        conll_model(overrides)


def test_uncertainty_log_variances_get_gradients_and_settle_at_log_loss():
    weighting = UncertaintyLossWeighting(["a", "b"])
    fixed = scalars(a=0.5, b=4.0)
    assert weighting(fixed).item() == 4.5  # Log-variances of 0 start as the plain sum.
    weighting(fixed).backward()
    # d/ds (exp(-s) * L + s) = 1 - L * exp(-s), which is 1 - L at s = 0.
    assert torch.allclose(weighting.log_variances.grad, torch.tensor([0.5, -3.0]))
    optimizer = torch.optim.SGD(weighting.parameters(), lr=0.1)
    for _ in range(300):
        optimizer.zero_grad()
        weighting(fixed).backward()
        optimizer.step()
    assert torch.allclose(weighting.log_variances.detach(), torch.tensor([math.log(0.5), math.log(4.0)]), atol=1e-4)
    assert weighting.current_weights() == pytest.approx({"a": 2.0, "b": 0.25}, abs=1e-3)


def test_uncertainty_weighting_trains_with_the_model_and_reloads_from_its_archive(tmp_path):
    torch.manual_seed(0)
    overrides = {"model.loss_weighting": {"type": "uncertainty"}}
    model = conll_model(overrides)
    batch = tensor_batch(model, read_instances("conll")[:8])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)  # The log-variances are model parameters.
    for _ in range(5):
        optimizer.zero_grad()
        model(**batch)["loss"].backward()
        optimizer.step()
    trained = dict(zip(model._loss_weighting.head_names, model._loss_weighting.log_variances.tolist()))
    assert trained["pos"] != 0.0 and trained["ner"] != 0.0 and trained["topic"] == 0.0  # No topic batch.
    metrics = model.get_metrics()
    assert metrics["pos_loss_weight"] == pytest.approx(math.exp(-trained["pos"]))

    conll_params(overrides).to_file(str(tmp_path / "config.json"))
    model.vocab.save_to_files(str(tmp_path / "vocabulary"))
    torch.save(model.state_dict(), tmp_path / "best.th")
    archive_model(tmp_path)
    loaded = load_archive(str(tmp_path / "model.tar.gz")).model
    assert "_loss_weighting.log_variances" in loaded.state_dict()
    assert torch.equal(loaded._loss_weighting.log_variances, model._loss_weighting.log_variances)


def run_epoch(weighting: DynamicWeightAverage, losses: dict[str, list[float]]) -> None:
    """One training epoch: batch `i` has the `i`-th loss of each head that has one."""
    weighting.train()
    for step in range(max(len(values) for values in losses.values())):
        weighting(scalars(**{head: values[step] for head, values in losses.items() if step < len(values)}))
    weighting.end_of_epoch()


def dwa_formula(previous: list[float], last: list[float], temperature: float = 2.0) -> list[float]:
    """Liu, Johns & Davison (2019): w_k = K exp(r_k / T) / sum_i exp(r_i / T), r_k = L_k(t-1) / L_k(t-2)."""
    scores = [math.exp(new / old / temperature) for old, new in zip(previous, last)]
    return [len(scores) * score / sum(scores) for score in scores]


# Per-head losses of three epochs, with their averages: a falls fastest, c not at all.
EPOCHS = [
    {"a": [2.0, 4.0], "b": [1.0], "c": [5.0, 5.0]},  # 3.0, 1.0, 5.0
    {"a": [1.5], "b": [0.5, 1.3], "c": [5.0]},  # 1.5, 0.9, 5.0
    {"a": [0.3], "b": [0.9], "c": [4.0]},
]


def test_dwa_weights_follow_the_formula_from_two_epochs_of_losses():
    weighting = DynamicWeightAverage(HEADS, temperature=2.0)
    run_epoch(weighting, EPOCHS[0])
    assert weighting.current_weights() == {"a": 1.0, "b": 1.0, "c": 1.0}
    # A validation pass neither counts its losses nor ends a training epoch.
    weighting.eval()
    weighting(scalars(a=100.0, b=100.0, c=0.01))
    weighting.end_of_epoch()
    run_epoch(weighting, EPOCHS[1])
    expected = dwa_formula([3.0, 1.0, 5.0], [1.5, 0.9, 5.0])
    assert list(weighting.current_weights().values()) == pytest.approx(expected)
    weights = weighting.current_weights()
    assert weights["c"] > weights["b"] > weights["a"]  # The slowest-falling loss weighs most.
    total = weighting(scalars(a=1.0, b=2.0, c=3.0))
    assert float(total) == pytest.approx(expected[0] * 1.0 + expected[1] * 2.0 + expected[2] * 3.0)


def test_dwa_state_survives_save_and_load():
    weighting = DynamicWeightAverage(HEADS)
    for losses in EPOCHS[:2]:
        run_epoch(weighting, losses)
    state = weighting.state_dict()
    # The running sums are not buffers (DistributedDataParallel would overwrite them with rank 0's), yet
    # they follow the module to another device or dtype as buffers do.
    assert set(state) == set(dict(weighting.named_buffers())) == {"weights", "loss_history"}
    assert {tensor.dtype for tensor in weighting.double().running_state()} == {torch.float64}
    weighting.float()
    restored = DynamicWeightAverage(HEADS)
    restored.load_state_dict(state)
    assert restored.current_weights() == weighting.current_weights()
    for each in (weighting, restored):
        run_epoch(each, EPOCHS[2])
        assert list(each.current_weights().values()) == pytest.approx(dwa_formula([1.5, 0.9, 5.0], [0.3, 0.9, 4.0]))


def test_dwa_weights_change_from_the_third_epoch_under_allennlps_trainer(tmp_path: Path):
    overrides = {"model.loss_weighting": {"type": "dwa"}, "trainer.num_epochs": 3}
    with contextlib.chdir(REPO_ROOT):
        train_model_from_file(str(CONLL_CONFIG), str(tmp_path), overrides=json.dumps(overrides))
    epochs = [json.loads((tmp_path / f"metrics_epoch_{epoch}.json").read_text()) for epoch in range(3)]
    heads = ["ner", "pos", "topic"]

    def weights(epoch: int, split: str) -> list[float]:
        return [epochs[epoch][f"{split}_{head}_loss_weight"] for head in heads]

    assert weights(0, "training") == weights(1, "training") == [1.0, 1.0, 1.0]
    assert weights(2, "training") != [1.0, 1.0, 1.0] and sum(weights(2, "training")) == pytest.approx(3.0)
    # The weights set when epoch 2's training pass ended weigh its validation loss and epoch 3's training.
    assert weights(1, "validation") == weights(2, "training")
    # The archive (the best epoch's state) holds those weights and the loss history they came from.
    best_epoch = json.loads((tmp_path / "metrics.json").read_text())["best_epoch"]
    loaded = load_archive(str(tmp_path / "model.tar.gz")).model._loss_weighting
    assert list(loaded.current_weights().values()) == pytest.approx(weights(best_epoch, "validation"))
    if best_epoch > 0:
        older, newer = loaded.loss_history.tolist()
        assert list(loaded.current_weights().values()) == pytest.approx(dwa_formula(older, newer))
