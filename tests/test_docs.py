"""
The documentation site (mkdocs.yml, docs/): every page in the navigation, the generated reference covering
every registered name, every error message the package raises in the troubleshooting page, and the blocks
marked `<!-- runnable -->` run (shell commands) or parsed and built (configuration snippets).
"""

import ast
import importlib.util
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Tuple

import _jsonnet
import pytest
import torch
import yaml
from allennlp.common import Params
from allennlp.data.data_loaders.multitask_epoch_sampler import MultiTaskEpochSampler
from allennlp.training.callbacks import TrainerCallback
from allennlp.training.optimizers import Optimizer

from tests.conftest import REPO_ROOT
from tests.documented_commands import in_test_environment, program_environment

DOCS = REPO_ROOT / "docs"
RUNNABLE = re.compile(r"<!-- runnable -->\n```(\w+)\n(.*?)```", flags=re.DOTALL)


def load_hooks() -> ModuleType:
    """docs/hooks.py, as MkDocs loads it (by path: docs/ is no package)."""
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runnable_blocks(language: str) -> List[Tuple[str, str]]:
    """(page, block text) of every block marked runnable in `language`."""
    return [
        (str(page.relative_to(DOCS)), text)
        for page in sorted(DOCS.rglob("*.md"))
        for found_language, text in RUNNABLE.findall(page.read_text())
        if found_language == language
    ]


def nav_pages(nav: Any) -> List[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return [page for entry in nav for page in nav_pages(entry)]


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text())
    pages = sorted(str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md"))
    assert sorted(nav_pages(config["nav"])) == pages


def test_reference_covers_every_registered_name():
    hooks = load_hooks()
    reference = hooks.configuration_reference()
    components = hooks.registered_components()
    assert len(components) > 20
    for component in components:
        assert f'### {component.base.__name__} `"{component.name}"`' in reference
    assert " at 0x" not in reference  # the same page on every build: no object addresses


def test_a_component_without_a_parameters_section_fails_the_build():
    hooks = load_hooks()
    undocumented = hooks.Component(
        Optimizer, "undocumented", type("Undocumented", (), {"__doc__": "No sections."}), None
    )
    with pytest.raises(hooks.MissingParametersError, match="undocumented"):
        hooks.component_section(undocumented)


def test_import_changes_page_lists_every_entry():
    from allennlp_multitask.common.import_changes import ADDED_SUBCOMMANDS, PATCHES, REPLACED_REGISTRATIONS

    page = load_hooks().import_changes()
    assert all(f"`{entry.ours}`" in page for entry in REPLACED_REGISTRATIONS)
    assert all(f"`{patch.target}`" in page for patch in PATCHES)
    assert all(f"`{command.name}` | `{command.ours}`" in page for command in ADDED_SUBCOMMANDS)


def error_messages() -> Dict[str, str]:
    """
    Each error the package constructs (`SomethingError("...")`): the first 40 characters of its longest literal
    piece, by place.
    """
    messages = {}
    for source in [*(REPO_ROOT / "allennlp_multitask").rglob("*.py"), REPO_ROOT / "allennlp_multitask_compat.py"]:
        for node in ast.walk(ast.parse(source.read_text())):
            if not (isinstance(node, ast.Call) and node.args and getattr(node.func, "id", "").endswith("Error")):
                continue
            pieces = [
                piece.value
                for piece in ast.walk(node.args[0])
                if isinstance(piece, ast.Constant) and isinstance(piece.value, str)
            ]
            if pieces:
                messages[f"{source.relative_to(REPO_ROOT)}:{node.lineno}"] = max(pieces, key=len).strip()[:40].strip()
    return messages


def test_troubleshooting_lists_every_error_message():
    page = " ".join((DOCS / "troubleshooting.md").read_text().split())
    messages = error_messages()
    assert len(messages) > 60
    missing = {place: message for place, message in messages.items() if " ".join(message.split()) not in page}
    assert missing == {}


@pytest.mark.parametrize(("page", "block"), runnable_blocks("jsonnet"))
def test_runnable_config_snippets_parse_and_build(page, block, tmp_path):
    config = Params(json.loads(_jsonnet.evaluate_snippet(page, "{" + block + "}")))
    sampler = config.get("data_loader", {}).get("sampler")
    if sampler is not None:
        assert isinstance(MultiTaskEpochSampler.from_params(Params(sampler)), MultiTaskEpochSampler)
    for callback in config.get("trainer", {}).get("callbacks", []):
        assert isinstance(
            TrainerCallback.from_params(Params(callback), serialization_dir=str(tmp_path)), TrainerCallback
        )
    optimizer = config.get("trainer", {}).get("optimizer")
    if optimizer is not None:
        parameters = list(torch.nn.Linear(2, 2).named_parameters())
        assert isinstance(Optimizer.from_params(Params(optimizer), model_parameters=parameters), Optimizer)


@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.parametrize(("page", "block"), runnable_blocks("bash"))
def test_runnable_commands_succeed(page, block):
    commands = in_test_environment(block)
    finished = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands],
        cwd=REPO_ROOT,
        env=program_environment(),
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, (page, commands, finished.stderr[-3000:])


def test_generated_pages_are_committed_as_the_code_now_makes_them():
    # They are read where the repository is browsed, not only on the built site.
    hooks = load_hooks()
    pages = hooks.pages_with_generated_parts()
    assert {Path(page).name for page in pages} == {"configuration.md", "changes-on-import.md"}
    stale = [page for page in pages if hooks.filled(Path(page).read_text()) != Path(page).read_text()]
    assert stale == [], "out of date: run `uv run --locked python docs/hooks.py` and commit the pages"


def markdown_lines(page: Path) -> List[str]:
    """The page's lines, those of fenced code blocks as `code` (a `# comment` there is no heading)."""
    lines, fenced = [], False
    for line in page.read_text().splitlines():
        fenced ^= line.startswith("```")
        lines.append("code" if fenced or line.startswith("```") else line)
    return lines


def test_no_section_is_empty():
    # A heading followed at once by another of the same or a higher level heads nothing.
    empty = []
    for page in sorted(DOCS.rglob("*.md")):
        lines = markdown_lines(page)
        headings = [
            (index, len(found.group(1)), found.group(2))
            for index, line in enumerate(lines)
            if (found := re.match(r"^(#+) (.*)", line))
        ]
        for (index, level, title), (next_index, next_level, _) in itertools.pairwise(headings):
            if next_level <= level and not any(line.strip() for line in lines[index + 1 : next_index]):
                empty.append(f"{page.relative_to(DOCS)}: {title}")
    assert empty == []


def test_the_locked_hugging_face_versions_the_docs_state_are_the_locks():
    lock = (REPO_ROOT / "uv.lock").read_text()
    locked = dict(re.findall(r'^name = "([^"]+)"\nversion = "([^"]+)"', lock, flags=re.MULTILINE))
    stated = re.search(r"Locked and tested: (.*?) \(`uv.lock`", (DOCS / "guides" / "transformers.md").read_text(), re.S)
    assert stated is not None
    versions = dict(part.rsplit(" ", 1) for part in stated.group(1).replace("\n", " ").split(", "))
    assert versions == {name: locked[name] for name in versions}
    assert {"transformers", "huggingface-hub", "tokenizers"} <= set(versions)


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_python_api_example_runs_on_a_trained_archive_from_another_directory(example_archive, tmp_path):
    page = (DOCS / "guides" / "predict-and-serve.md").read_text()
    code = re.search(r"<!-- runs on the quick start's archive -->\n```python\n(.*?)```", page, flags=re.DOTALL)
    assert code is not None
    (tmp_path / "runs" / "sentiment_and_topic").mkdir(parents=True)
    (tmp_path / "runs" / "sentiment_and_topic" / "model.tar.gz").symlink_to(example_archive)
    finished = subprocess.run([sys.executable, "-c", code.group(1)], cwd=tmp_path, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-3000:]
    labels, heads_and_vocabulary, epochs = finished.stdout.splitlines()
    assert labels.split()[0] in {"positive", "negative"} and len(labels.split()) == 2
    assert heads_and_vocabulary.startswith("['sentiment', 'topic'] {") and int(epochs) > 0
