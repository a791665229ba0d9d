"""TorchJD's aggregators by name, as a `jacobian_descent` callback's configuration gives them."""

import importlib.util
import sys

import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.training.callbacks import TrainerCallback
from torchjd.aggregation import MGDA, CAGrad, UPGrad

from allennlp_multitask.training.callbacks import JacobianDescentCallback
from allennlp_multitask.training.callbacks.jacobian_aggregators import AGGREGATORS, build_aggregator

# The options an aggregator cannot do without.
REQUIRED = {"cagrad": {"c": 0.5}, "fairgrad": {"alpha": 1.0}, "nash_mtl": {"n_tasks": 3}}
# Three task gradients: the first two conflict.
JACOBIAN = torch.tensor([[1.0, 0.1, 0.0, 2.0], [-1.0, 1.0, 0.5, 0.0], [0.2, 0.3, 1.0, -0.4]])


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_every_offered_aggregator_builds_from_its_name_and_aggregates_the_rows_of_a_step(name):
    if name == "nash_mtl" and importlib.util.find_spec("ecos") is None:
        pytest.skip("Nash-MTL's solver ecos has no wheels for this Python")
    aggregator = build_aggregator({"type": name, **REQUIRED.get(name, {})})
    for _ in range(2):  # stateful aggregators (GradVac, PCD, Nash-MTL) keep state between steps
        update = aggregator(JACOBIAN)
        assert update.shape == (4,) and bool(torch.isfinite(update).all()), name


def callback(**config) -> JacobianDescentCallback:
    return TrainerCallback.from_params(Params({"type": "jacobian_descent", **config}), serialization_dir="unused")


def test_the_callback_takes_an_aggregator_by_name_or_with_its_options_and_lists_of_numbers_as_tensors():
    cagrad = callback(aggregator={"type": "cagrad", "c": 0.25})._aggregator
    assert isinstance(cagrad, CAGrad) and cagrad.c == 0.25
    assert isinstance(callback(aggregator="mgda")._aggregator, MGDA)
    assert isinstance(callback()._aggregator, UPGrad)
    upgrad = build_aggregator({"type": "upgrad", "pref_vector": [1, 3]})
    assert torch.equal(upgrad.pref_vector, torch.tensor([1.0, 3.0]))


@pytest.mark.parametrize(
    "config, message",
    [
        ({"type": "pc_grad"}, r"type 'pc_grad' is not one of \['aligned_mtl', 'cagrad'"),
        ({"c": 0.5}, "type None is not one of"),
        (["upgrad"], r"must be a name or {\"type\": name, ...options}, not \['upgrad'\]"),
        ({"type": "constant", "weights": [1, 2]}, "not offered: it weighs the rows by their position"),
        ({"type": "krum", "n_byzantine": 1}, '"krum" is not offered'),
        ({"type": "upgrad", "pref": [1, 2]}, r"has no option\(s\) \['pref'\]; its options: \['pref_vector'\]"),
        ({"type": "upgrad", "projector": "quadprog"}, r"no option\(s\) \['projector'\]"),
        ({"type": "cagrad"}, "\"cagrad\" with options {}: .*missing 1 required positional argument: 'c'"),
        ({"type": "mgda", "epsilon": -1.0}, "\"mgda\" with options {'epsilon': -1.0}: .*epsilon"),
    ],
)
def test_configuration_mistakes_fail_at_construction_naming_the_aggregator_and_option(config, message):
    with pytest.raises(ConfigurationError, match=message):
        build_aggregator(config)


def test_a_parallel_chunk_size_below_one_fails_at_construction():
    with pytest.raises(ConfigurationError, match=r"parallel_chunk_size must be a positive number .* got 0"):
        callback(parallel_chunk_size=0)


def test_without_torchjd_construction_fails_naming_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchjd.aggregation", None)
    # Each of the README's ways to install us: our checkout, a uv project, plain pip (pyproject.toml's spec).
    message = (
        r"needs TorchJD, .*`uv sync --extra jd` in its checkout, "
        r'`uv add "allennlp-multitask\[jd\] @ /path/to/allennlp_multitask-<version>-py3-none-any.whl"` in a uv '
        r"project, or `pip install 'torchjd\[quadprog-projector\]<0.19,>=0.18'`"
    )
    with pytest.raises(ConfigurationError, match=message):
        build_aggregator({"type": "upgrad"})


@pytest.mark.parametrize(
    "solver, config, extra",
    [("cvxpy", {"type": "cagrad", "c": 0.5}, "jd-full"), ("quadprog", {"type": "upgrad"}, "jd")],
)
def test_without_an_aggregators_solver_construction_fails_naming_the_extra(monkeypatch, solver, config, extra):
    monkeypatch.setitem(sys.modules, solver, None)  # what `find_spec` reports for a package not installed
    message = rf'"{config["type"]}" needs a solver .*uv sync --extra {extra}`.*"allennlp-multitask\[{extra}\] @ '
    with pytest.raises(ConfigurationError, match=message):
        build_aggregator(config)
