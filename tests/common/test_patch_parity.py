"""
Every function that importing the package patches behaves as the original it replaces, called the ways a
user's code can call it: the same return value or error, and the same tree left on disk (paths, contents,
permission bits), under several umasks. The scenarios are in `patch_parity.py`; each side runs them in a
process of its own, AllenNLP's originals in one that never imports our package.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest

from allennlp_multitask.common.import_changes import PATCHES
from tests.common.patch_parity import SCENARIOS, UMASKS
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def _records(side: str, directory: Path) -> Dict[str, Any]:
    finished = subprocess.run(
        [sys.executable, "-m", "tests.common.patch_parity", side, str(directory / side)],
        cwd=REPO_ROOT,
        # The vocabulary writes a set of namespaces in the order of their hashes.
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(finished.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Dict[str, Any]]:
    directory = tmp_path_factory.mktemp("patch_parity")
    return {side: _records(side, directory) for side in ("original", "ours")}


def _outcomes(original: Dict[str, Any], ours: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The two records with each error named by its class, ours by the original's where it is a subclass of it."""
    theirs = original["raised"][0] if original["raised"] else None
    raised = ours["raised"] and (theirs if theirs in ours["raised"] else ours["raised"][0])
    return {**original, "raised": theirs}, {**ours, "raised": raised}


def test_every_patched_function_has_scenarios():
    assert {patch.target for patch in PATCHES} == {scenario.target for scenario in SCENARIOS.values()}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_ours_leaves_what_the_original_leaves(records, name):
    for umask in UMASKS:
        key = f"{name} (umask {umask:03o})"
        original, ours = _outcomes(records["original"][key], records["ours"][key])
        if SCENARIOS[name].differs:
            assert ours != original, f"{key}: documented as differing, but does not"
        else:
            assert ours == original, key
