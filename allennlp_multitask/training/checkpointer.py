import glob
import logging
import os
import time
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import torch
import torch.distributed as dist
from allennlp.common.util import is_distributed
from allennlp.nn import util as nn_util
from allennlp.training.checkpointer import Checkpointer as AllenNlpCheckpointer
from allennlp.training.trainer import Trainer, TrainerCheckpoint

from allennlp_multitask.common.atomic_files import remove_partial_files, save_atomically
from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.training.preemption import TrainingStopped, requested_stop

logger = logging.getLogger(__name__)


@replace_registration(AllenNlpCheckpointer, "default")
class Checkpointer(AllenNlpCheckpointer):
    """
    AllenNLP's `Checkpointer`, with the same configuration keys and file names, made safe to crash in
    and to resume from:

    - Each state file is written atomically (a temporary file beside it, flushed, then renamed), the
      model state first and the training state last, so that a checkpoint whose training state exists is
      whole. AllenNLP wrote straight to the final paths, and skipped a file that already existed, so a
      file torn by a crash stayed torn.
    - `find_latest_checkpoint` gives the newest checkpoint whose model state and training state are both
      on disk, and `load_checkpoint` the newest one whose two files also load; others are skipped with a
      warning that names them, and left on disk. AllenNLP looked at the model states only, and a torn or
      lone one made `allennlp train -r` crash. Resuming also removes the temporary files of writes that
      a crash cut short.
    - When a signal asked training to stop (see `preemption`), `maybe_save_checkpoint`, which the
      trainer calls after every batch, writes a checkpoint there, logs where, and raises
      `TrainingStopped`. Under distributed training it asks every worker whether one received a signal
      (a small all-reduce per batch), so that all stop at the same batch; the other workers wait while
      the primary writes.

    Registered as a `Checkpointer` with name "default" (the default checkpointer), replacing AllenNLP's.

    # Parameters

    serialization_dir : `str`
    save_completed_epochs : `bool`, optional (default = `True`)
    save_every_num_seconds : `float`, optional (default = `None`)
    save_every_num_batches : `int`, optional (default = `None`)
    keep_most_recent_by_count : `int`, optional (default = `2`)
    keep_most_recent_by_age : `int`, optional (default = `None`)
        As AllenNLP's `Checkpointer`.
    """

    def maybe_save_checkpoint(
        self, trainer: Trainer, num_epochs_completed: int, num_batches_in_epoch_completed: int
    ) -> bool:
        """Saves a checkpoint if it is time to (see AllenNLP's); raises `TrainingStopped` once asked to stop."""
        stop = requested_stop(getattr(trainer, "cuda_device", None))
        if stop is None:
            return super().maybe_save_checkpoint(trainer, num_epochs_completed, num_batches_in_epoch_completed)
        self.save_checkpoint(trainer)
        if is_distributed():
            dist.barrier()
        where = self._model_state_path(num_epochs_completed, num_batches_in_epoch_completed)
        message = (
            f"Stopped on {stop.name} after {num_epochs_completed} epoch(s) and {num_batches_in_epoch_completed} "
            f"batch(es): checkpoint written to {where}; `allennlp train -r` takes up from there."
        )
        logger.warning(message)
        raise TrainingStopped(message)

    def save_checkpoint(self, trainer: Trainer) -> None:
        if self._serialization_dir is None:
            return
        checkpoint = trainer.get_checkpoint_state()
        if checkpoint is None:  # A non-primary worker of a model that is not sharded.
            return
        point = (checkpoint.trainer_state["epochs_completed"], checkpoint.trainer_state["batches_in_epoch_completed"])
        save_atomically(checkpoint.model_state, self._model_state_path(*point))
        save_atomically(checkpoint.trainer_state, self._training_state_path(*point))
        self._last_save_time = time.time()
        self._last_save_num_epochs_completed, self._last_save_num_batches_in_epoch_completed = point
        if self._is_primary:
            self._remove_old_checkpoints()

    def _remove_old_checkpoints(self) -> None:
        """Removes the checkpoints that neither `keep_most_recent_by_count` nor `..._by_age` keeps."""
        if self._keep_most_recent_by_count is None and self._keep_most_recent_by_age is None:
            return
        checkpoints = sorted(self._find_all_checkpoints(), reverse=True)
        keep = set(checkpoints[: self._keep_most_recent_by_count or 0])
        if self._keep_most_recent_by_age is not None:
            now = time.time()
            for point in checkpoints:
                paths = [path for path in self._state_paths(point) if os.path.exists(path)]
                if now - max(os.path.getmtime(path) for path in paths) <= self._keep_most_recent_by_age:
                    keep.add(point)
        for point in checkpoints:
            if point not in keep:
                self._remove_checkpoint(*point)

    def model_state_path(self, epochs_completed: int, batches_in_epoch_completed: int) -> str:
        """The path of the model state saved after these epochs and batches (of this worker, if sharded)."""
        return self._model_state_path(epochs_completed, batches_in_epoch_completed)

    def _state_paths(self, point: Tuple[int, int]) -> Tuple[str, str]:
        return self._model_state_path(*point), self._training_state_path(*point)

    def _find_all_checkpoints(self) -> Set[Tuple[int, int]]:
        """The points in time (epochs, batches in epoch) of which a model state or a training state exists."""
        suffix = f"_w{self._rank}.th" if self.state_is_sharded else ".th"
        points = set()
        kinds = [("model_state", self._parse_model_state_path), ("training_state", self._parse_training_state_path)]
        for kind, parse in kinds:
            for path in glob.iglob(os.path.join(glob.escape(self._serialization_dir), f"{kind}_e*_b*{suffix}")):
                point = parse(path)
                if point is not None:
                    points.add(point)
        return points

    def _whole_checkpoints(self) -> Iterator[Tuple[str, str]]:
        """The model and training state paths of each checkpoint with both on disk, newest first."""
        for point in sorted(self._find_all_checkpoints(), reverse=True):
            paths = self._state_paths(point)
            missing = [path for path in paths if not os.path.isfile(path)]
            if missing:
                logger.warning("Skipping the checkpoint at %s: %s is missing (left on disk).", paths[0], missing[0])
                continue
            yield paths

    def find_latest_checkpoint(self) -> Optional[Tuple[str, str]]:
        """The model and training state paths of the newest checkpoint that has both; `None` if none has."""
        return next(self._whole_checkpoints(), None)

    def load_checkpoint(self) -> Optional[TrainerCheckpoint]:
        """
        The model state and training state of the newest checkpoint whose two files load (onto the CPU);
        `None` if no checkpoint does. Those that do not load are skipped with a warning naming them.
        """
        if self._is_primary:
            remove_partial_files(self._serialization_dir)
        skipped: List[str] = []
        for model_path, training_state_path in self._whole_checkpoints():
            try:
                model_state = torch.load(model_path, map_location=nn_util.device_mapping(-1))
                training_state = torch.load(training_state_path, map_location=nn_util.device_mapping(-1))
            except Exception as error:  # A torn file fails in many ways: OSError, RuntimeError, EOFError...
                logger.warning(
                    "Skipping the checkpoint %s and %s, which does not load (left on disk): %r",
                    model_path,
                    training_state_path,
                    error,
                )
                skipped.append(model_path)
                continue
            if skipped:
                logger.warning("Resuming from the checkpoint %s, older than the ones skipped.", model_path)
            self._loaded_training_state = training_state
            return TrainerCheckpoint(model_state, training_state)
        return None

    def take_loaded_training_state(self) -> Optional[Dict[str, Any]]:
        """The training state `load_checkpoint` last returned, once (for what AllenNLP's trainer does not restore)."""
        training_state, self._loaded_training_state = getattr(self, "_loaded_training_state", None), None
        return training_state
