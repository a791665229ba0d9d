"""
`allennlp serve` as a user runs it: a child process on a free loopback port, started from a directory without a
`.allennlp_plugins` file, and plain HTTP requests to it (the standard library's client, raw sockets where a test
needs to break the protocol).
"""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, List, Optional, Tuple

READY = "allennlp serve: "


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A running `allennlp serve` process; `output` collects its log, line by line."""

    def __init__(self, archive: Path, cwd: Path, *options: str, workers: int = 1, timeout_s: float = 240) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(Path(sys.executable).parent / "allennlp"),
            "serve",
            "--archive-path",
            str(archive),
            "-p",
            str(self.port),
            "--workers",
            str(workers),
            *options,
            "--include-package",
            "allennlp_multitask",
        ]
        self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: List[str] = []
        threading.Thread(target=self._collect, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while len(self.ready_lines()) < workers:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("allennlp serve did not get ready:\n" + "".join(self.output[-60:]))
            time.sleep(0.1)

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def ready_lines(self) -> List[str]:
        return [line for line in self.output if line.startswith(READY) and " ready at " in line]

    def request(self, path: str, body: Any = None, raw: Optional[bytes] = None) -> Tuple[int, Any]:
        """GET `path`, or POST `body` as JSON (or the bytes `raw`); returns the status and the JSON answer."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="GET" if data is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def raw_connection(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=120)

    def stop(self) -> int:
        """SIGTERM, then the exit status once the process has shut down."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def read_response(connection: socket.socket) -> Tuple[int, Any]:
    """The status and JSON body of the HTTP/1.1 response on `connection` (which it reads to the end)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)
