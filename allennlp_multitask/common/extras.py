"""Our optional dependencies (the extras in `pyproject.toml`), and how to install one that is missing."""

import importlib.metadata


def install_hint(extra: str) -> str:
    """How to install our optional `extra`, for each way of installing us (README, "Use it in your own project")."""
    # What the extra needs besides ourselves, as our package metadata (pyproject.toml) declares it; build
    # backends write the marker's quotes either way (`extra == "jd"`, `extra == 'jd'`).
    marker = f'extra == "{extra}"'
    needs = [
        requirement.split(";")[0].strip()
        for requirement in importlib.metadata.requires("allennlp-multitask") or []
        if marker in requirement.replace("'", '"') and not requirement.startswith("allennlp-multitask")
    ]
    return (
        f'install allennlp-multitask\'s "{extra}" extra: `uv sync --extra {extra}` in its checkout, '
        f'`uv add "allennlp-multitask[{extra}] @ /path/to/allennlp_multitask-<version>-py3-none-any.whl"` in a '
        f"uv project, or `pip install {' '.join(repr(need) for need in needs)}`."
    )
