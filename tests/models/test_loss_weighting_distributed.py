"""
Every loss weighting under DistributedDataParallel on two CPU workers, in one run of the workers: each worker
trains its own batches for three epochs, and both end with the same parameters and loss-weighting state, and
give the same weights for the same losses.
"""

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.nn.parallel import DistributedDataParallel

from tests.distributed_workers import on_two_workers
from tests.models.conll_example import conll_model, read_instances, tensor_batch
from tests.models.test_scalarizer_weighting import CONFIGS

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

WEIGHTINGS = {
    **{name: {"type": name, **options} for name, options in CONFIGS.items()},
    "static": {"type": "static", "weights": {"pos": 0.5}},
    "uncertainty": {"type": "uncertainty"},
    "dwa": {"type": "dwa"},
    "gradnorm": {"type": "gradnorm"},
}
# Those whose state changes in training (`random`: its last draw); the others' weights are fixed or depend only
# on the losses.
CHANGING = {"famo", "uw", "imtl_l", "uncertainty", "dwa", "gradnorm", "random"}
EPOCHS, SAME_LOSSES = 3, {"ner": torch.tensor(0.7), "pos": torch.tensor(2.0), "topic": torch.tensor(1.1)}


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters and buffers, but the latest losses that a scalarizer keeps of its own batch."""
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return {name: tensor.detach().clone() for name, tensor in tensors.items() if not name.endswith("latest_losses")}


def train_every_weighting(rank: int, models: dict[str, torch.nn.Module]) -> dict[str, Any]:
    """Each model, under DDP, for `EPOCHS` epochs of a CoNLL batch then a topic batch, both the worker's own."""
    torch.manual_seed(rank)  # Each worker its own random numbers (`random`'s draws).
    results = {}
    for name, model in models.items():
        batches = [tensor_batch(model, read_instances(task)[4 * rank : 4 * rank + 4]) for task in ("conll", "topic")]
        ddp = DistributedDataParallel(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(EPOCHS):
            for batch in batches:
                optimizer.zero_grad()
                ddp(**batch)["loss"].backward()
                optimizer.step()
            model.get_metrics(reset=True)  # The end of an epoch: dwa's new weights, famo's last update.
        terms = model._loss_weighting.terms(SAME_LOSSES)
        results[name] = {"state": state(model), "weights": {head: terms[head] / SAME_LOSSES[head] for head in terms}}
    return results


def test_every_loss_weighting_keeps_the_same_state_and_weights_on_two_workers(tmp_path: Path):
    models = {name: conll_model({"model.loss_weighting": weighting}) for name, weighting in WEIGHTINGS.items()}
    initial = {name: state(model) for name, model in models.items()}
    first, second = on_two_workers(train_every_weighting, models, out_dir=tmp_path)
    for name in WEIGHTINGS:
        assert first[name]["weights"] == second[name]["weights"], name
        assert first[name]["state"].keys() == second[name]["state"].keys(), name
        for key, value in first[name]["state"].items():
            assert torch.equal(value, second[name]["state"][key]), (name, key)
        weighting_state = [key for key in initial[name] if key.startswith("_loss_weighting.")]
        learned = [key for key in weighting_state if not torch.equal(initial[name][key], first[name]["state"][key])]
        assert bool(learned) == (name in CHANGING), (name, learned)
