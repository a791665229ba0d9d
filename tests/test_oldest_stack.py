"""requirements/oldest.txt, the oldest Hugging Face stack CI tests, is what our overrides let users install."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parent.parent


def pins(path: Path) -> dict:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {Requirement(line).name: Requirement(line) for line in lines}


def test_oldest_stack_is_allowed_by_our_overrides_and_starts_their_ranges():
    oldest = pins(REPO_ROOT / "requirements" / "oldest.txt")
    overrides = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["uv"]["override-dependencies"]
    ranges = {Requirement(line).name: Requirement(line).specifier for line in overrides}
    assert {"transformers", "tokenizers", "huggingface-hub", "safetensors", "cached-path"} == set(oldest)
    for name, pin in oldest.items():
        (version,) = [specifier.version for specifier in pin.specifier if specifier.operator == "=="]
        if name in ranges:
            assert version in ranges[name], (name, version, ranges[name])
            floors = [specifier.version for specifier in ranges[name] if specifier.operator == ">="]
            assert [version.split(".")[:2]] == [floor.split(".")[:2] for floor in floors], (name, version, floors)
