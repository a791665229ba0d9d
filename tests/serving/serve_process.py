"""`allennlp serve` as a user runs it: a child process on a free loopback port, ready once `/ready` answers."""

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Optional, Type

from allennlp.common.util import find_open_port

from tests.documented_commands import program_environment

READY_WITHIN_S = 180


class ServeProcess:
    """
    `allennlp serve --archive-path ARCHIVE` (and `options`) with our package included, run from `directory`,
    which must hold no `.allennlp_plugins` file; stopped with SIGTERM on leaving the `with` block.
    """

    def __init__(self, archive: Path, directory: Path, *options: str) -> None:
        assert not (directory / ".allennlp_plugins").exists()
        self.port = find_open_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / f"serve-{self.port}.log"
        command = ["allennlp", "serve", "--archive-path", str(archive), "--port", str(self.port), *options]
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [*command, "--include-package", "allennlp_multitask"],
                cwd=directory,
                env=program_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def __enter__(self) -> "ServeProcess":
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"allennlp serve exited: {self.log.read_text()[-3000:]}"
            try:
                self.get("ready")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        self.stop()
        raise AssertionError(f"allennlp serve not ready within {READY_WITHIN_S} s: {self.log.read_text()[-3000:]}")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/{path}", timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        self.stop()
