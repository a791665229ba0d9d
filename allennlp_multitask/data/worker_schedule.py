"""
Batches whose tasks every distributed worker's batch at the same position shares, as the multitask data
loader checks once per epoch, so that the model need not check it at every batch (a collective and a
host read each).
"""

from typing import List, Sequence, Tuple

import torch.distributed as dist


class CheckedTasks(list):
    """
    A batch's per-instance tasks (its `task` field), as a data loader gives them when it has checked
    that every worker's batch at this position of the epoch holds the same tasks: a model that runs
    heads by task then knows, without asking the other workers, that they run the same heads.
    """


def same_schedule_on_every_worker(batch_tasks: Sequence[Tuple[str, ...]]) -> bool:
    """
    Whether every worker's epoch has the same batches, by the tasks in each (`batch_tasks`, in order).
    Collective: every worker calls it, once per epoch.
    """
    schedules: List[Sequence[Tuple[str, ...]]] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(schedules, list(batch_tasks))
    return all(schedule == schedules[0] for schedule in schedules)
