"""What `allennlp serve` was asked to serve, and how: passed to each worker process as JSON in the environment."""

import json
import os
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from allennlp.common.checks import ConfigurationError

# The environment variable through which the command hands its settings to the server's worker processes.
SETTINGS_VARIABLE = "ALLENNLP_MULTITASK_SERVE_SETTINGS"


@dataclass(frozen=True)
class ServeSettings:
    """The options of `allennlp serve` (see `allennlp serve --help`)."""

    archive_path: str
    predictor: str = "multitask"
    cuda_device: int = -1
    host: str = "127.0.0.1"
    port: int = 8000
    include_package: List[str] = field(default_factory=list)
    batch_size: int = 32
    max_wait_ms: float = 0.0
    active_heads: Optional[List[str]] = None
    workers: int = 1
    max_body_bytes: int = 1 << 20
    max_batch_inputs: int = 256

    def __post_init__(self) -> None:
        at_least_one = ("batch_size", "workers", "max_body_bytes", "max_batch_inputs")
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ConfigurationError(f"allennlp serve: --{name.replace('_', '-')} must be 1 or more.")
        if self.max_wait_ms < 0:
            raise ConfigurationError("allennlp serve: --max-wait-ms must be 0 or more.")
        if not 1 <= self.port <= 65535:
            raise ConfigurationError(f"allennlp serve: --port {self.port} is not a TCP port (1 to 65535).")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def to_environment(self) -> None:
        os.environ[SETTINGS_VARIABLE] = json.dumps(asdict(self))

    @classmethod
    def from_environment(cls) -> "ServeSettings":
        return cls(**json.loads(os.environ[SETTINGS_VARIABLE]))
