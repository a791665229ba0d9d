"""
Stopping training cleanly when a scheduler stops the job: SIGTERM (SLURM, Kubernetes, `kill`) or SIGINT
(Ctrl-C). While `stop_on_signals` is active (our `gradient_descent` trainer's `train`), the first such
signal asks training to stop: the batch in flight finishes, our `Checkpointer` writes a checkpoint there
and raises `TrainingStopped`, and `allennlp train -r` takes up from that batch. A second signal stops at
once, as AllenNLP does on the first (it raises `SigTermReceived`, or `KeyboardInterrupt` for SIGINT).
"""

import logging
import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator, List, Optional

import torch
import torch.distributed as dist
from allennlp.common.util import SigTermReceived, is_distributed

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_received: List[int] = []


class TrainingStopped(SigTermReceived):
    """
    Training stopped on a signal, after writing its checkpoint. A `SigTermReceived`, so that
    `allennlp train` archives the best weights so far, as AllenNLP does when it is interrupted.
    """


def _ask_to_stop(signum: int, frame: Optional[FrameType]) -> None:
    if _received:
        raise KeyboardInterrupt if signum == signal.SIGINT else SigTermReceived
    _received.append(signum)
    logger.warning(
        "Received %s: training stops after the batch in flight, once its checkpoint is written "
        "(send it again to stop at once, without a checkpoint).",
        signal.Signals(signum).name,
    )


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """
    Inside, SIGTERM and SIGINT ask training to stop (`requested_stop`) rather than interrupt it; the
    handlers before are put back on leaving. Only the main thread can handle signals: elsewhere this
    does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _ask_to_stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received.clear()


def requested_stop(device: Optional[torch.device] = None) -> Optional[signal.Signals]:
    """
    The signal that asked training to stop, if one did; under distributed training, one that any
    worker received (a collective call: every worker must make it, with a tensor on `device`, the
    worker's training device, which NCCL needs to be a GPU).
    """
    received = _received[0] if _received else 0
    if is_distributed():
        flag = torch.tensor(received, device=device)
        dist.all_reduce(flag, dist.ReduceOp.MAX)
        received = int(flag.item())
    return signal.Signals(received) if received else None
