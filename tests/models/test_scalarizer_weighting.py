"""
TorchJD's scalarizers as loss weightings: built from a configuration by name, combining the heads' losses
as TorchJD computes it, FAMO learning after each step, resumed exactly (on two workers:
test_loss_weighting_distributed.py).
"""

import json
from pathlib import Path

import pytest
import torch
import torchjd.scalarization as scalarization
from allennlp.common.checks import ConfigurationError

from allennlp_multitask.models.scalarizer_weighting import SCALARIZERS
from tests.commands.runs import SimulatedCrash, allennlp, final_metrics
from tests.conftest import EXAMPLE_CONFIG
from tests.distributed_workers import on_two_workers
from tests.models.conll_example import conll_model, read_instances, tensor_batch

PER_HEAD = {"ner": 0.2, "pos": 0.3, "topic": 0.5}
CONFIGS = {
    "constant": {"weights": PER_HEAD},
    "cosmos": {"lambda_": 0.5, "weights": PER_HEAD},
    "famo": {"lr": 0.05},
    "geometric_mean": {},
    "imtl_l": {},
    "mean": {},
    "pbi": {"theta": 5.0, "weights": PER_HEAD},
    "random": {},
    "stch": {"mu": 0.5, "reference": {"ner": 0.1, "pos": 0.0, "topic": 0.0}},
    "sum": {},
    "uw": {},
}


def torchjd_scalarizer(name: str) -> torch.nn.Module:
    options = {
        option: torch.tensor([value[head] for head in PER_HEAD]) if isinstance(value, dict) else value
        for option, value in CONFIGS[name].items()
    }
    scalarizer_class = getattr(scalarization, SCALARIZERS[name])
    shape = {"shape": 3} if "shape" in scalarizer_class.__init__.__code__.co_varnames else {}
    return scalarizer_class(**options, **shape)


def test_every_torchjd_scalarizer_has_a_name_but_dwa_which_ours_is():
    assert set(SCALARIZERS.values()) == set(scalarization.__all__) - {"Scalarizer", "DWA"}
    assert set(CONFIGS) == set(SCALARIZERS)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_model_loss_is_torchjds_scalarization_of_the_head_losses(name):
    model = conll_model({"model.loss_weighting": {"type": name, **CONFIGS[name]}})
    batch = tensor_batch(model, read_instances("conll")[:4])
    torch.manual_seed(1)
    outputs = model(**batch)
    # The batch has no topic instance: topic enters with its latest loss, 1.0 before it has one.
    values = torch.stack([outputs["ner_loss"], outputs["pos_loss"], torch.tensor(1.0)]).detach()
    torch.manual_seed(1)
    assert torch.allclose(outputs["loss"], torchjd_scalarizer(name)(values))
    weights = model.get_metrics()
    assert {"ner_loss_weight", "pos_loss_weight", "topic_loss_weight"} <= weights.keys()


@pytest.mark.parametrize(
    "config, message",
    [
        ({"type": "famo", "learning_rate": 0.1}, r"\"famo\" has no option\(s\) \['learning_rate'\]; its options: "),
        ({"type": "stch", "mu": 0.5, "weights": {"ner": 1.0}}, "option weights takes a number for every head"),
        ({"type": "stch", "mu": -1.0}, "should be strictly positive"),
        ({"type": "pbi"}, r"\"pbi\" with options \{\}: .*missing 2 required"),
    ],
)
def test_configuration_mistakes_fail_at_construction(config, message):
    with pytest.raises(ConfigurationError, match=message):
        conll_model({"model.loss_weighting": config})


def train_steps(model: torch.nn.Module, batch: dict, steps: int) -> None:
    optimizer = torch.optim.SGD([parameter for parameter in model.parameters() if parameter.requires_grad], lr=0.1)
    for _ in range(steps):
        optimizer.zero_grad()
        model(**batch)["loss"].backward()
        optimizer.step()


def test_famo_learns_from_the_losses_recomputed_after_each_step_and_leaves_metrics_alone():
    torch.manual_seed(0)
    model = conll_model({"model.loss_weighting": {"type": "famo", "lr": 0.05}})
    batch = tensor_batch(model, read_instances("conll")[:4])
    logits = model._loss_weighting.scalarizer._w
    assert not logits.requires_grad  # Out of the trainer's optimizer: FAMO steps them itself.
    train_steps(model, batch, 2)
    after_first_update = logits.clone()
    assert not torch.equal(after_first_update, torch.zeros(3))  # Updated at the second forward.
    model.get_metrics(reset=True)  # Ends the epoch: the last step's update, not counted by the metrics.
    assert not torch.equal(logits, after_first_update)
    assert model._heads["pos"]._accuracy.total_count == 0
    train_steps(model, batch, 2)  # The second forward recomputes the first's losses, uncounted too.
    tokens = sum(len(instance["tokens"]) for instance in read_instances("conll")[:4])
    assert model._heads["pos"]._accuracy.total_count == 2 * tokens


def train_run(
    run: Path,
    monkeypatch: pytest.MonkeyPatch,
    weighting: dict,
    *options: str,
    crash: bool,
    config: Path = EXAMPLE_CONFIG,
) -> None:
    """`allennlp train` on `config` for 2 epochs with `weighting`, crashing in the second if asked."""
    overrides = {
        "model.loss_weighting": weighting,
        "model.loss_weights": {},  # The sentiment example weighs its heads statically.
        "trainer.num_epochs": 2,
        "trainer.callbacks": [{"type": "test_crash_once", "crash_in_epoch": 1 if crash else None}],
    }
    allennlp("train", str(config), "-s", str(run), "-o", json.dumps(overrides), *options, monkeypatch=monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize(
    "weighting",
    [{"type": "famo"}, {"type": "uw"}, {"type": "imtl_l"}, {"type": "stch", "mu": 0.2}, {"type": "random"}],
    ids=lambda weighting: weighting["type"],
)
def test_a_crashed_run_resumes_as_if_never_stopped(weighting, in_repo_root, tmp_path, monkeypatch):
    train_run(tmp_path / "uninterrupted", monkeypatch, weighting, crash=False)
    with pytest.raises(SimulatedCrash):
        train_run(tmp_path / "resumed", monkeypatch, weighting, crash=True)
    train_run(tmp_path / "resumed", monkeypatch, weighting, "-r", crash=True)
    metrics = final_metrics(tmp_path / "uninterrupted")
    assert metrics == final_metrics(tmp_path / "resumed")
    weights = [metrics[f"training_{head}_loss_weight"] for head in ("sentiment", "topic")]
    assert weights != [1.0, 1.0]


@pytest.mark.parametrize("name", ["stch", "famo", "geometric_mean"])
def test_the_heads_terms_for_jacobian_descent_give_the_losss_gradient(name):
    model = conll_model({"model.loss_weighting": {"type": name, **CONFIGS[name]}})
    outputs = model(**tensor_batch(model, read_instances("conll")[:4]))
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    terms = model.loss_terms(outputs)
    assert list(terms) == ["ner", "pos"]
    from_terms = torch.autograd.grad(sum(terms.values()), parameters, retain_graph=True, allow_unused=True)
    from_loss = torch.autograd.grad(outputs["loss"], parameters, allow_unused=True)
    for term_gradient, loss_gradient in zip(from_terms, from_loss):
        assert (term_gradient is None) == (loss_gradient is None)
        if loss_gradient is not None:
            torch.testing.assert_close(term_gradient, loss_gradient)


def random_weights_on_a_worker(rank: int, model: torch.nn.Module) -> list[torch.Tensor]:
    torch.manual_seed(rank)  # Each worker its own random numbers.
    batch = tensor_batch(model, read_instances("conll")[4 * rank : 4 * rank + 4])
    weights = []
    for _ in range(2):
        outputs = model(**batch)
        losses = torch.stack([outputs["ner_loss"], outputs["pos_loss"], torch.tensor(1.0)])
        (weight,) = torch.autograd.grad(outputs["loss"], outputs["ner_loss"], retain_graph=True)
        weights.append(torch.cat([weight.view(1), losses.detach()]))
    return weights


@pytest.mark.distributed
def test_random_weights_are_worker_zeros_draw_on_every_worker(tmp_path: Path):
    model = conll_model({"model.loss_weighting": {"type": "random"}})
    first, second = on_two_workers(random_weights_on_a_worker, model, out_dir=tmp_path)
    assert first[0][0] == second[0][0] and first[1][0] == second[1][0]  # The same draw, batch after batch,
    assert first[0][0] != first[1][0]  # new for each batch,
    assert not torch.equal(first[0][1:], second[0][1:])  # on different losses.


def famo_update(before: torch.Tensor, after: torch.Tensor, lr: float) -> torch.Tensor:
    """The logits of a fresh TorchJD FAMO after one update from `before` to `after`, as TorchJD documents it."""
    famo = scalarization.FAMO(len(before), lr=lr)
    famo(before)
    famo.update(after)
    return famo._w.detach()


def test_famo_with_gradient_accumulation_learns_once_per_step_from_all_the_steps_batches():
    torch.manual_seed(0)
    model = conll_model({"model.loss_weighting": {"type": "famo", "lr": 0.05}})
    instances = read_instances("conll")
    batches = [tensor_batch(model, instances[:4]), tensor_batch(model, instances[4:8])]
    optimizer = torch.optim.SGD([parameter for parameter in model.parameters() if parameter.requires_grad], lr=0.1)
    logits = model._loss_weighting.scalarizer._w

    def head_losses(outputs: dict) -> torch.Tensor:  # Topic is in no batch: 1.0, its stand-in, throughout.
        return torch.stack([outputs["ner_loss"].detach(), outputs["pos_loss"].detach(), torch.tensor(1.0)])

    before = []
    for batch in batches:  # One optimizer step over two batches, as the trainer's num_gradient_accumulation_steps.
        outputs = model(**batch)
        outputs["loss"].backward()
        before.append(head_losses(outputs))
    optimizer.step()
    assert model._loss_weighting.scalarizer._optimizer.state == {}  # No update between the two batches.
    after = [head_losses(model(**batch)) for batch in batches]  # The first forward updates, for both batches.
    expected = famo_update(torch.stack(before).mean(dim=0), torch.stack(after).mean(dim=0), lr=0.05)
    torch.testing.assert_close(logits.detach(), expected)
