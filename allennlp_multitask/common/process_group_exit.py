"""
Keeps AllenNLP 2.10's distributed training workers from aborting as they exit on today's PyTorch.

AllenNLP's training workers (`allennlp train` with a `"distributed"` setting) return without calling
`torch.distributed.destroy_process_group()`. On PyTorch 2.x a process that exits with a gloo process group
still alive can die in C++ during interpreter shutdown ("terminate called without an active
exception", SIGABRT), after training finished, and `allennlp train` reports the worker as crashed. On the
two-core machine this was written on, 5 of 15 runs of two gloo workers that did nothing but all-reduce and
exit aborted so; none did once they destroyed their group first. Destroying the default group at exit,
while the interpreter is still whole, is what every worker should have done.
"""

import atexit

import torch.distributed as dist


def destroy_process_group_left_open() -> None:
    """Destroys the default process group if this process initialised one and never destroyed it."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


atexit.register(destroy_process_group_left_open)
