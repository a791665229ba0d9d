"""AllenNLP's optimizer names, re-registered: same updates as AllenNLP's for existing configs; fast ones on demand."""

import copy
from typing import Any, Dict, List

import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.training import optimizers as allennlp_optimizers
from allennlp.training.optimizers import Optimizer

from allennlp_multitask.training.optimizers import FAST_OPTIMIZERS

# Each name with options that make every part of its update run (momentum, weight decay).
CONFIGS: Dict[str, Dict[str, Any]] = {
    "adam": {"lr": 0.1, "weight_decay": 0.01},
    "adamw": {"lr": 0.1},
    "adamax": {"lr": 0.1},
    "adagrad": {"lr": 0.1},
    "adadelta": {},
    "sgd": {"lr": 0.1, "momentum": 0.9},
    "rmsprop": {"lr": 0.1, "momentum": 0.5},
    "averaged_sgd": {"lr": 0.1},
}


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Embedding(20, 6), torch.nn.Linear(6, 3))


def train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int = 3) -> List[torch.Tensor]:
    """A few steps on fixed batches; the parameters after them."""
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        tokens = torch.randint(0, 20, (8, 5), generator=generator)
        labels = torch.randint(0, 3, (8, 5), generator=generator)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(tokens).flatten(0, 1), labels.flatten()).backward()
        optimizer.step()
    return [parameter.detach().clone() for parameter in model.parameters()]


def optimizer_from_config(model: torch.nn.Module, config: Dict[str, Any], cls: type = Optimizer) -> Optimizer:
    return cls.from_params(model_parameters=list(model.named_parameters()), params=Params(copy.deepcopy(config)))


def test_every_allennlp_wrapper_with_a_foreach_torch_optimizer_is_replaced():
    for name in CONFIGS:
        assert Optimizer.by_name(name) is FAST_OPTIMIZERS[name]
    assert Optimizer.by_name("huggingface_adamw").__module__ == "allennlp.training.optimizers"  # No fast form.


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_an_existing_config_updates_parameters_exactly_as_allennlps_optimizer(name: str):
    ours_model, allennlps_model = small_model(), small_model()
    ours = optimizer_from_config(ours_model, {"type": name, **CONFIGS[name]})
    allennlps_class = FAST_OPTIMIZERS[name].__mro__[1]
    assert allennlps_class.__module__ == "allennlp.training.optimizers"
    allennlps = optimizer_from_config(allennlps_model, CONFIGS[name], allennlps_class)
    assert ours.defaults == allennlps.defaults
    for mine, theirs in zip(train_steps(ours_model, ours), train_steps(allennlps_model, allennlps)):
        assert torch.equal(mine, theirs)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fast_options_reach_torch_and_update_alike(name: str):
    model = small_model()
    reference = train_steps(model, optimizer_from_config(model, {"type": name, **CONFIGS[name]}))
    options = ["foreach", "fused"] if name in ("adam", "adamw", "adagrad", "sgd") else ["foreach"]
    for option in options:
        model = small_model()
        optimizer = optimizer_from_config(model, {"type": name, option: True, **CONFIGS[name]})
        assert optimizer.defaults[option] is True and all(group[option] for group in optimizer.param_groups)
        for fast, slow in zip(train_steps(model, optimizer), reference):
            torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)


def test_fused_reaches_the_optimizers_of_a_multi_optimizer():
    model = small_model()
    config = {
        "type": "multi",
        "optimizers": {"default": {"type": "adam", "fused": True}, "embedding": {"type": "sgd", "lr": 0.1}},
        "parameter_groups": [[["^0\\."], {"optimizer_name": "embedding"}]],
    }
    optimizer = optimizer_from_config(model, config)
    assert optimizer.optimizers["default"].defaults["fused"] is True
    train_steps(model, optimizer)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"type": "adamax", "fused": True}, "'adamax' .* has no fused implementation"),
        ({"type": "adam", "fused": True, "foreach": True}, "'adam' refuses .*'fused': True"),
        ({"type": "adam", "fuse": True}, "Extra parameters"),
    ],
)
def test_a_wrong_fast_option_is_a_configuration_error(config: Dict[str, Any], message: str):
    with pytest.raises(ConfigurationError, match=message):
        optimizer_from_config(small_model(), config)


def test_allennlps_own_class_refuses_the_fast_options_that_ours_accept():
    with pytest.raises(ConfigurationError):
        optimizer_from_config(small_model(), {"fused": True}, allennlp_optimizers.AdamOptimizer)
