"""
The commands of the README and of the documentation's pages write into runs/, which git ignores, and never
over each other's outputs, and reach the environment's programs through `uv run`.
"""

import re
from typing import List

from tests.conftest import REPO_ROOT
from tests.documented_commands import bash_blocks

OUTPUT_OPTIONS = ("--output-file", "--predictions-output-file")
WRITING_OPTIONS = re.compile(r"(-s|--serialization-dir|--output-file|--predictions-output-file) (\S+)")


def readme_commands() -> List[str]:
    """The commands of the README's and the documentation's bash blocks, continuation lines joined."""
    return [command for block in bash_blocks() for command in block.commands]


def test_commands_write_under_runs_and_each_to_its_own_files():
    written = [(option, path) for command in readme_commands() for option, path in WRITING_OPTIONS.findall(command)]
    assert len(written) > 5
    assert [path for _, path in written if not path.startswith("runs/")] == []
    files = [path for option, path in written if option in OUTPUT_OPTIONS]
    assert len(files) == len(set(files)), files
    assert "runs/" in (REPO_ROOT / ".gitignore").read_text().splitlines()


def test_commands_run_in_an_environment_that_has_allennlp():
    # After the quick start, `allennlp`, `pytest` and the project's `python` live in .venv, not on the PATH:
    # commands reach them through `uv run` (a user's own project activates its environment first).
    bare = [
        command
        for command in readme_commands()
        if re.match(r"\s*(allennlp|pytest)\b", command) or re.match(r"\s*python (?!-m venv)", command)
    ]
    assert bare == []
