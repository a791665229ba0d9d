"""
Phase timings of one training process, for benchmarks/train_end_to_end.py: the process (the plain script, or
`allennlp train` through benchmarks/phase_probe.py) stamps where each phase starts and ends, and writes them
to the JSON file named by $PHASE_CLOCK_OUTPUT before it exits; the benchmark adds start-up (from its spawn
to the first stamp) and exit (from the last stamp to the process's end).

Each stamp holds both clocks: `time.monotonic()` (system-wide on Linux, so comparable with the parent's)
and `time.process_time()` (this process's CPU time since it started, all threads). Imports only the
standard library: the plain script must not import AllenNLP.
"""

import json
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Dict, Iterator, Tuple

OUTPUT_VARIABLE = "PHASE_CLOCK_OUTPUT"
CLOCKS = ("wall", "cpu")


def now() -> Tuple[float, float]:
    """(wall, cpu) seconds."""
    return time.monotonic(), time.process_time()


class PhaseClock:
    """Seconds per phase, on both clocks, added up over every interval timed under a phase's name."""

    def __init__(self) -> None:
        self.started = now()
        self.seconds: Dict[str, Dict[str, float]] = {clock: defaultdict(float) for clock in CLOCKS}
        self.values: Dict[str, float] = {}

    def add(self, phase: str, start: Tuple[float, float], end: Tuple[float, float]) -> None:
        for index, clock in enumerate(CLOCKS):
            self.seconds[clock][phase] += end[index] - start[index]

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = now()
        try:
            yield
        finally:
            self.add(name, start, now())

    def write(self) -> None:
        """Writes the phases, the first stamp and this last one to $PHASE_CLOCK_OUTPUT."""
        wall, cpu = now()
        report = {"started": dict(zip(CLOCKS, self.started)), "ended": {"wall": wall, "cpu": cpu}}
        report.update(phases=self.seconds, values=self.values)
        with open(os.environ[OUTPUT_VARIABLE], "w") as output:
            json.dump(report, output)
