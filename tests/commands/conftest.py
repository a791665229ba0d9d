"""Fixtures of the command-line tests."""

from pathlib import Path

import pytest

from tests.commands.runs import train
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example trained for `runs.EPOCHS` epochs with the crash-recording callback, never stopped."""
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(REPO_ROOT)
        train(run, monkeypatch)
    return run
