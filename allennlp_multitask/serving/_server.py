"""Runs the server of `allennlp serve` with uvicorn, in this process or in `--workers` worker processes."""

import signal
from types import FrameType
from typing import Optional

import uvicorn

from allennlp_multitask.serving.settings import ServeSettings

# How long uvicorn waits for a worker process to answer its health check before it kills and replaces it.
WORKER_HEALTHCHECK_S = 120


def serve(settings: ServeSettings) -> None:
    """
    Serves until SIGTERM or SIGINT (Ctrl-C), then stops taking connections, finishes the requests in flight and
    returns. With several workers, each is a process of its own with its own model, all on one port.
    """
    settings.to_environment()
    # uvicorn raises the signal that stopped it again once it has shut down; without this handler, that would
    # kill the process (exit status -15) after a clean shutdown.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    app = "allennlp_multitask.serving._app:app_from_environment"
    if settings.workers > 1:
        # uvicorn binds the port, then starts the workers, which load their models and serve. A worker answers
        # uvicorn's health checks once it has imported `allennlp` (the main module of `allennlp serve`) again,
        # which takes longer than uvicorn's 5 seconds on a busy machine: it would be killed and restarted forever.
        uvicorn.run(
            app,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        )
        return
    # The port is bound before the model loads, as with workers: once the ready line is printed, connections
    # are taken.
    config = uvicorn.Config(app, factory=True, host=settings.host, port=settings.port)
    uvicorn.Server(config).run(sockets=[config.bind_socket()])


def _stopped(signal_number: int, frame: Optional[FrameType]) -> None:
    """The server has shut down on this signal: nothing is left to do."""
