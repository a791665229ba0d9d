"""
A user's own project, outside the repository, as the README's "Use it in your own project" describes:
our wheel is built from a copy of the checkout, a new uv project on the newest Python found takes the
README's `[tool.uv]` lines and `uv add`s the wheel, then the bundled example trains and predicts there
(`examples/train_and_predict.sh`) and `allennlp evaluate` reads the archive through `.allennlp_plugins`.
Nothing is written into the repository. Slow (a new environment), but uv's cache is shared.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

from tests.conftest import REPO_ROOT

SUPPORTED = ["3.13", "3.12", "3.11"]


def newest_python() -> str:
    """The newest supported interpreter on this machine (pyenv's versions too), as a path."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for version in SUPPORTED:
        candidates = sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)
        found = shutil.which(f"python{version}")
        for candidate in [*map(str, candidates), *([found] if found else [])]:
            probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True)
            if probe.returncode == 0 and probe.stdout.decode().strip() == str(tuple(map(int, version.split(".")))):
                return candidate
    return sys.executable


def readme_uv_recipe() -> str:
    """The README's `[tool.uv]` block for a user's `pyproject.toml`, as text."""
    blocks = re.findall(r"```toml\n(.*?)```", (REPO_ROOT / "README.md").read_text(), flags=re.DOTALL)
    recipes = [block for block in blocks if "override-dependencies" in block]
    assert len(recipes) == 1
    return recipes[0]


def git_status() -> Optional[str]:
    if not (REPO_ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout


def tracked_copy(destination: Path) -> Path:
    """The checkout's files (those git tracks, where it is a git checkout), copied to `destination`."""
    ignore = shutil.ignore_patterns(".git", ".venv*", "runs", "build", "dist", "*.egg-info", "__pycache__", ".*cache")
    shutil.copytree(REPO_ROOT, destination, ignore=ignore)
    return destination


def run(command: List[str], cwd: Path, env: Dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)} failed in {cwd}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done.stdout


def test_a_new_uv_project_installs_the_wheel_and_trains_evaluates_and_predicts(tmp_path: Path):
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed (the README's test command runs under `uv run`, which sets $UV)"
    python = newest_python()
    status_before = git_status()
    # The user's processes know nothing of ours: no active environment, project or interpreter settings.
    ours = ("VIRTUAL_ENV", "UV_PROJECT", "UV_PYTHON", "PYTHONPATH")
    env = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
    env.update(UV_PYTHON=python, OMP_NUM_THREADS="1")

    source = tracked_copy(tmp_path / "checkout")
    run([uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(source)], tmp_path, env)
    (wheel,) = (tmp_path / "dist").glob("allennlp_multitask-*.whl")

    project = tmp_path / "my-project"
    project.mkdir()
    run([uv, "init", "--bare", "--name", "my-project"], project, env)
    with (project / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n" + readme_uv_recipe())
    run([uv, "add", str(wheel)], project, env)
    shutil.copytree(REPO_ROOT / "examples", project / "examples")

    where = run([uv, "run", "python", "-c", "import allennlp_multitask as m; print(m.__file__)"], project, env)
    assert str(project / ".venv") in where and str(REPO_ROOT) not in where, where

    printed = run([uv, "run", "bash", "examples/train_and_predict.sh", "runs/example"], project, env)
    run_dir = project / "runs" / "example"
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == len((project / "examples/data/predict_inputs.jsonl").read_text().splitlines())
    assert all(any(key.endswith("_label") for key in output) for output in predictions), printed

    (project / ".allennlp_plugins").write_text("allennlp_multitask\n")
    data = {task: f"examples/data/{task}_validation.jsonl" for task in ["sentiment", "topic"]}
    archive = str(run_dir / "model.tar.gz")
    evaluate = ["allennlp", "evaluate", archive, json.dumps(data), "--output-file", "runs/metrics.json"]
    run([uv, "run", *evaluate], project, env)
    metrics = json.loads((project / "runs" / "metrics.json").read_text())
    assert 0.0 <= metrics["sentiment_accuracy"] <= 1.0 and 0.0 <= metrics["topic_accuracy"] <= 1.0, metrics

    assert git_status() == status_before, "the test wrote into the repository"
