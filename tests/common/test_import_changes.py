"""
`allennlp_multitask.common.import_changes` lists what importing the package changes: it is compared with
what importing does in a fresh process, and what we patch must still have the shape we rely on (so another
AllenNLP, cached-path or torch fails here, loudly, rather than at a user's run).
"""

import dataclasses
import importlib.util
import json
import subprocess
import sys
from typing import Any, Dict

import pytest

import allennlp_multitask_compat
from allennlp_multitask.common.import_changes import (
    ADDED_SUBCOMMANDS,
    COMPAT_FIXES,
    EXIT_HOOKS,
    PATCHES,
    REPLACED_REGISTRATIONS,
)
from tests.common.import_snapshot import resolve
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


@pytest.fixture(scope="module")
def snapshot() -> Dict[str, Any]:
    patches = [{"target": patch.target, "used_by": list(patch.used_by)} for patch in PATCHES]
    finished = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "common" / "import_snapshot.py")],
        input=json.dumps(patches),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(finished.stdout.splitlines()[-1])


def test_replaced_registrations_are_the_listed_ones(snapshot):
    listed = {f"{entry.base} {entry.name}": [entry.replaces, entry.ours] for entry in REPLACED_REGISTRATIONS}
    actual = {
        key: [change["before"][0], change["after"][0]] for key, change in snapshot["changed_registrations"].items()
    }
    assert actual == listed


def test_replacements_keep_allennlps_constructors(snapshot):
    for key, change in snapshot["changed_registrations"].items():
        assert change["after"][1] == change["before"][1], key  # e.g. TrainModel's "from_partial_objects"


def test_new_registrations_are_ours(snapshot):
    added = snapshot["added_registrations"]
    assert len(added) >= 10
    assert [key for key, (cls, _) in added.items() if not cls.startswith("allennlp_multitask.")] == []


def test_added_subcommands_are_the_listed_ones(snapshot):
    base = "allennlp.commands.subcommand.Subcommand"
    added = {key: cls for key, (cls, _) in snapshot["added_registrations"].items() if key.startswith(f"{base} ")}
    assert added == {f"{base} {command.name}": command.ours for command in ADDED_SUBCOMMANDS}


def test_replaced_classes_still_have_the_methods_ours_override():
    assert any(entry.overrides for entry in REPLACED_REGISTRATIONS)
    for entry in (entry for entry in REPLACED_REGISTRATIONS if entry.overrides):
        theirs, ours = resolve(entry.replaces), resolve(entry.ours)
        assert issubclass(ours, theirs), entry.name
        for method in entry.overrides:
            # AllenNLP calls these by name: renamed or gone, ours would silently never run.
            assert callable(getattr(theirs, method, None)), (entry.replaces, method)
            assert method in vars(ours), (entry.ours, method)


def test_patches_are_the_listed_ones(snapshot):
    assert snapshot["patches_after"] == {patch.target: patch.replacement for patch in PATCHES}
    assert [
        target
        for target, shape in snapshot["patches_before"].items()
        if shape["value"].startswith("allennlp_multitask")
    ] == []


def test_patched_originals_have_the_shape_we_rely_on(snapshot):
    for patch in PATCHES:
        before = snapshot["patches_before"][patch.target]
        assert set(patch.parameters) <= set(before["parameters"]), (patch.target, before["parameters"])
        # A function that imported the name (`from x import y`) would not see the patch.
        assert before["looked_up_by"] == list(patch.used_by), patch.target


def test_exit_hooks_are_the_listed_ones(snapshot):
    assert snapshot["exit_hooks"] == [hook.function for hook in EXIT_HOOKS]


def test_compat_fixes_are_all_applied_once_allennlp_is_imported(snapshot):
    assert COMPAT_FIXES == "allennlp_multitask_compat.FIXES"
    assert snapshot["compat_finders"] == 1
    assert snapshot["compat_fixes_missed"] == []
    for module in allennlp_multitask_compat.FIXES:
        assert importlib.util.find_spec(module) is not None, module


def test_every_entry_gives_a_reason():
    for entry in (*REPLACED_REGISTRATIONS, *PATCHES, *ADDED_SUBCOMMANDS, *EXIT_HOOKS):
        assert len(entry.reason) > 30, dataclasses.astuple(entry)
