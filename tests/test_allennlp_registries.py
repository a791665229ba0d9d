"""
Every component AllenNLP registers builds from a minimal config and runs once on today's torch, transformers
and Python, with our package imported (so where we replace a name, ours is swept). The tables, one per
registry, are in `tests/allennlp_registries.py` (training, data and modules), `tests/allennlp_nn_registries.py`
(building blocks), `tests/allennlp_model_registries.py` (models, trainers, evaluation, and the registries
left to other tests) and `tests/allennlp_analysis_registries.py` (fairness, interpretation, span extractors,
vision); what cannot run here is excluded there with its reason.
"""

import importlib
import importlib.util
import pkgutil
from pathlib import Path

import allennlp
import pytest
from allennlp.common import Registrable

from tests.allennlp_analysis_registries import ANALYSIS_REGISTRIES
from tests.allennlp_model_registries import MODEL_REGISTRIES, NOT_SWEPT
from tests.allennlp_nn_registries import NN_REGISTRIES
from tests.allennlp_registries import REGISTRIES as TRAINING_REGISTRIES
from tests.allennlp_registries import Bench, Case, Excluded

# AllenNLP's modules that import `checklist`, the package of AllenNLP's optional `checklist` extra, which is not
# installed (no multitask component needs it): imported only where it is.
NEEDS_CHECKLIST = [
    "allennlp.commands._checklist_internal",
    "allennlp.common.testing.checklist_test",
    "allennlp.confidence_checks.task_checklists",
    "allennlp.sanity_checks.task_checklists",
]


def import_every_allennlp_module() -> None:
    """Imports what AllenNLP registers, all of it, whatever the other test modules imported before this one."""
    checklist_installed = importlib.util.find_spec("checklist") is not None
    for module in pkgutil.walk_packages(allennlp.__path__, "allennlp."):
        if checklist_installed or module.name not in NEEDS_CHECKLIST:
            importlib.import_module(module.name)


import_every_allennlp_module()

REGISTRIES = (*TRAINING_REGISTRIES, *NN_REGISTRIES, *MODEL_REGISTRIES, *ANALYSIS_REGISTRIES)

CASES = [
    pytest.param(registry, name, id=f"{registry.base.__name__}-{name}")
    for registry in REGISTRIES
    for name, entry in registry.entries.items()
    if isinstance(entry, Case)
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Bench:
    return Bench(tmp_path_factory.mktemp("sweep"), tiny_bert_dir)


@pytest.mark.parametrize("registry, name", CASES)
def test_each_registered_component_builds_from_a_config_and_runs(bench, registry, name):
    registry.run(bench, name, registry.entries[name])


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda registry: registry.base.__name__)
def test_every_registered_name_is_swept_or_excluded_with_a_reason(registry):
    registered = Registrable._registry[registry.base]
    # Leaving out what other test modules register for themselves (e.g. tests/commands' callbacks).
    assert sorted(registry.entries) == sorted(
        name for name, (cls, _) in registered.items() if not cls.__module__.startswith("tests.")
    )
    for name, entry in registry.entries.items():
        assert isinstance(entry, Case) or (isinstance(entry, Excluded) and len(entry.reason) > 40), name


def test_every_registry_is_swept_or_left_with_a_reason():
    swept = {registry.base for registry in REGISTRIES}
    left = {f"{base.__module__}.{base.__qualname__}" for base in Registrable._registry if base not in swept}
    assert left == set(NOT_SWEPT)
