"""
The shell commands of the README and of the documentation's pages (their bash blocks), and how the tests
run them: in the tests' own environment, `uv run --locked [--extra X]` dropped and its programs first on
the `PATH`.
"""

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from tests.conftest import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", flags=re.DOTALL)


@dataclass(frozen=True)
class Block:
    """A bash block of `page` (relative to the repository root), starting at `line`."""

    page: str
    line: int
    text: str

    @property
    def commands(self) -> List[str]:
        """Its lines, continuation lines joined, blank lines left out."""
        return [line for line in self.text.replace("\\\n", " ").splitlines() if line.strip()]


def bash_blocks() -> List[Block]:
    return [
        Block(str(page.relative_to(REPO_ROOT)), text[: found.start()].count("\n") + 2, found.group(1))
        for page in PAGES
        for text in [page.read_text()]
        for found in BASH_BLOCK.finditer(text)
    ]


def in_test_environment(commands: str) -> str:
    """`commands` to run in the tests' environment: `uv run --locked [--extra X]` dropped."""
    return re.sub(r"uv run --locked( --extra \S+)* ", "", commands.replace("\\\n", " "))


def program_environment() -> Dict[str, str]:
    """The tests' environment variables, with the tests' `allennlp`, `python` and `pytest` first on the `PATH`."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path}
