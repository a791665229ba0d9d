"""
Every component AllenNLP registers, in the registries a multitask config names, builds from a minimal config
and runs once on today's torch, transformers and Python, with our package imported (so where we replace a
name, ours is swept). The tables are in `tests/allennlp_registries.py`; what cannot run here is excluded there
with its reason.
"""

from pathlib import Path

import pytest
from allennlp.common import Registrable

from tests.allennlp_nn_registries import NN_REGISTRIES
from tests.allennlp_registries import REGISTRIES as TRAINING_REGISTRIES
from tests.allennlp_registries import Bench, Case, Excluded

REGISTRIES = (*TRAINING_REGISTRIES, *NN_REGISTRIES)

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
    assert sorted(registry.entries) == sorted(Registrable._registry[registry.base])
    for name, entry in registry.entries.items():
        assert isinstance(entry, Case) or (isinstance(entry, Excluded) and len(entry.reason) > 40), name
