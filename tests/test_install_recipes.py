"""
The install recipes users copy stay in step with `pyproject.toml` and `uv.lock`, their one source of truth:
the overrides in the README's uv-project recipe and in `requirements/overrides.txt`, and the pins of
`requirements/locked.txt`.
"""

import os
import re
import shutil
import subprocess
import tomllib
from typing import List

import pytest

from tests.conftest import REPO_ROOT

# How requirements/locked.txt is made (README, "Plain pip"); run from the repository root.
EXPORT_LOCKED = ["export", "--locked", "--no-hashes", "--no-emit-project", "--no-dev", "--no-annotate", "--no-header"]


def project_overrides() -> List[str]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["uv"]["override-dependencies"]


def readme_toml_blocks(page: str = "README.md") -> List[dict]:
    blocks = re.findall(r"```toml\n(.*?)```", (REPO_ROOT / page).read_text(), flags=re.DOTALL)
    return [tomllib.loads(block) for block in blocks]


@pytest.mark.parametrize("page", ["README.md", "docs/install.md"])
def test_readme_uv_project_recipe_has_the_projects_overrides(page):
    uv_tables = [block.get("tool", {}).get("uv", {}) for block in readme_toml_blocks(page)]
    recipes = [table for table in uv_tables if "override-dependencies" in table]
    assert len(recipes) == 1, f"{page} should hold exactly one [tool.uv] override-dependencies recipe"
    assert recipes[0]["override-dependencies"] == project_overrides()
    assert recipes[0].get("compile-bytecode") is True


def test_shipped_overrides_file_has_the_projects_overrides():
    lines = (REPO_ROOT / "requirements" / "overrides.txt").read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == project_overrides()


@pytest.mark.subprocess
def test_locked_requirements_are_what_uv_lock_exports():
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to export uv.lock (the README's commands run under `uv run`, which sets $UV)"
    exported = subprocess.run([uv, *EXPORT_LOCKED], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    shipped = (REPO_ROOT / "requirements" / "locked.txt").read_text()
    assert shipped == exported, (
        "requirements/locked.txt is out of date: run `uv " + " ".join(EXPORT_LOCKED) + " -o requirements/locked.txt`"
    )
    assert re.search(r"^allennlp==2\.10\.1$", shipped, flags=re.MULTILINE)
    assert re.search(r"^torch==\d", shipped, flags=re.MULTILINE)
