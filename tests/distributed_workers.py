"""
Two CPU workers joined by a gloo process group, forked from the test process (no re-import of AllenNLP),
for the tests of distributed training.
"""

import datetime
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from allennlp.common.util import find_open_port
from torch.multiprocessing import start_processes

WORKERS = 2
JOIN_TIMEOUT_S = 120  # a hang guard for the forked workers, not a performance check


def _join_and_run(rank: int, port: int, work: Callable[..., Any], args: tuple, out_dir: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=WORKERS,
        timeout=datetime.timedelta(seconds=60),  # a test that desynchronises the workers fails, not hangs
    )
    try:
        torch.save(work(rank, *args), out_dir / f"worker{rank}.pt")
    finally:
        dist.destroy_process_group()


def on_two_workers(work: Callable[..., Any], *args: Any, out_dir: Path) -> list[Any]:
    """
    Runs `work(rank, *args)` in two forked processes joined by a gloo process group, and returns what
    each returned. A worker's exception comes back as `ProcessRaisedException` carrying its traceback.
    """
    workers = start_processes(
        _join_and_run, (find_open_port(), work, args, out_dir), nprocs=WORKERS, join=False, start_method="fork"
    )
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while not workers.join(timeout=max(deadline - time.monotonic(), 0)):  # raises if a worker raised
        if time.monotonic() >= deadline:
            for process in workers.processes:
                process.kill()
            raise TimeoutError(f"The workers did not finish within {JOIN_TIMEOUT_S} s.")
    return [torch.load(out_dir / f"worker{rank}.pt", weights_only=False) for rank in range(WORKERS)]
