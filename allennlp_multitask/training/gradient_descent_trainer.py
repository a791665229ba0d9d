import contextlib
import inspect
import json
import logging
import os
from typing import Any, ContextManager, Dict, Optional, Tuple

import torch
from allennlp.data import TensorDict
from allennlp.training import Trainer
from allennlp.training.gradient_descent_trainer import GradientDescentTrainer as AllenNlpGradientDescentTrainer
from allennlp.training.trainer import TrainerCheckpoint

from allennlp_multitask.common.atomic_files import link_atomically, save_atomically
from allennlp_multitask.common.mixed_precision import amp_dtype_named, autocast, check_autocast_supported
from allennlp_multitask.common.random_state import random_state
from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.common.tf32 import turn_on_tf32
from allennlp_multitask.data.data_loaders import MultiTaskDataLoader
from allennlp_multitask.models.multitask import MultiTaskModel
from allennlp_multitask.training.checkpointer import Checkpointer
from allennlp_multitask.training.preemption import stop_on_signals

logger = logging.getLogger(__name__)


@replace_registration(Trainer, "gradient_descent", constructor="from_partial_objects")
class GradientDescentTrainer(AllenNlpGradientDescentTrainer):
    """
    AllenNLP's `GradientDescentTrainer`, built from the same configuration, with these changes:

    - A training batch whose outputs have no `"loss"` fails with the model's account of why, for our
      `MultiTaskModel`: the batch's tasks and what each head got (labels missing, e.g. under a
      `label_key` that matches nothing). AllenNLP's trainer said only that the outputs have no `"loss"`
      key. The model's `forward` itself returns its outputs without a loss, as AllenNLP's does.
    - It writes `best.th` atomically, when it saves it itself rather than linking it to the checkpoint
      just saved (see `Checkpointer`).
    - Resuming (`allennlp train -r`), it checks that `best.th` loads, and where a crash (or an earlier,
      non-atomic version) tore it or lost it, puts back the best epoch's weights from that epoch's
      checkpoint; with that checkpoint gone too, it warns and saves the weights resumed from instead.
      AllenNLP failed once training was over, loading the torn file.
    - SIGTERM or SIGINT stops training after the batch in flight, with a checkpoint there (see
      `preemption` and `Checkpointer`); AllenNLP stopped at once, losing what came after the last
      checkpoint.
    - With our `multitask` training data loader (not under distributed training), checkpoints also hold
      the loader's position and the state of every random generator, and `-r` takes them up: the
      resumed run trains on exactly the batches the stopped run would have, with the same random numbers
      (shuffling, dropout, validation's shuffling), without making the tensors of the batches it skips.
      AllenNLP re-seeds and reads the data of the finished epochs and batches again, which gives the same
      batches only if nothing else drew random numbers meanwhile; that is still what other loaders get.
    - A run resumed after its last epoch's checkpoint (killed before it wrote `metrics.json`) returns the
      last epoch's metrics, from `metrics_epoch_{N}.json`; AllenNLP's returned only the `best_*` ones.
    - Mixed precision (`use_amp`) goes through `torch.amp`, in float16 with a gradient scaler on CUDA as
      AllenNLP's did, or (`amp_dtype: "bfloat16"`) in bfloat16 without a scaler, on CUDA or on the CPU.
      The forward pass autocasts (in `batch_outputs`, training and validation); checkpoints hold the
      gradient scaler's state, which `-r` takes up (AllenNLP's started it afresh).
    - `allow_tf32` lets float32 matrix products and convolutions run on TF32 tensor cores on CUDA.

    Registered as a `Trainer` with name "gradient_descent" (AllenNLP's default `Trainer`), replacing
    AllenNLP's registration; built, like AllenNLP's, by `from_partial_objects`.

    # Parameters

    num_epochs : `int`, optional (default = `20`)
    patience : `int`, optional (default = `None`)
    validation_metric : `Union[str, List[str]]`, optional (default = `"-loss"`)
    optimizer : `Lazy[Optimizer]`, optional (default = `Lazy(Optimizer.default)`)
    checkpointer : `Lazy[Checkpointer]`, optional (default = `Lazy(Checkpointer)`, our `default` checkpointer)
    callbacks : `List[Lazy[TrainerCallback]]`, optional (default = `None`)
        As AllenNLP's `GradientDescentTrainer`, like every other key of its configuration (`cuda_device`,
        `grad_norm`, `num_gradient_accumulation_steps`, `learning_rate_scheduler`, ...): the
        table above lists them all (the model and the data loaders come from the top-level keys).
    use_amp : `bool`, optional (default = `False`)
        Mixed precision: the forward pass autocasts in `amp_dtype` on the trainer's device.
    amp_dtype : `str`, optional (default = `"float16"`)
        With `use_amp`: `"float16"` (CUDA only; with a gradient scaler unless `grad_scaling` is false, as
        AllenNLP's trainer) or `"bfloat16"` (CUDA devices that support it, Ampere and later, or the CPU; no
        scaler). Another name, float16 on the CPU or bfloat16 on an older GPU fail at construction.
    allow_tf32 : `bool`, optional (default = `False`)
        On a CUDA device, sets `torch.backends.cuda.matmul.allow_tf32` (as
        `torch.set_float32_matmul_precision("high")` does for CUDA) and `torch.backends.cudnn.allow_tf32` to
        `True` when the trainer is built, for the whole process, and leaves them so: float32 matrix products
        and convolutions then run on TF32 tensor cores (Ampere and later), several times faster, with a
        10-bit mantissa. On the CPU it sets nothing and logs a note. `False` leaves torch's flags as they are.
    """

    def __init__(
        self,
        *args: Any,
        use_amp: bool = False,
        amp_dtype: str = "float16",
        grad_scaling: bool = True,
        allow_tf32: bool = False,
        **kwargs: Any,
    ) -> None:
        dtype = amp_dtype_named(amp_dtype, "trainer's amp_dtype")
        # AllenNLP's loops enter `amp.autocast(self._use_amp)` (CUDA, float16); with `_use_amp` false that
        # does nothing, and `batch_outputs` enters this trainer's own autocast.
        super().__init__(*args, use_amp=False, grad_scaling=grad_scaling, **kwargs)
        if allow_tf32:
            turn_on_tf32(self.cuda_device)
        self._autocast_dtype: Optional[torch.dtype] = None
        if use_amp:
            check_autocast_supported(self.cuda_device, dtype, "trainer (use_amp)")
            self._autocast_dtype = dtype
            if dtype == torch.float16 and grad_scaling:
                wrapped = self._ddp_wrapped_model
                # A sharded model (FairScale) brings its own scaler; AllenNLP's others are torch's.
                self._scaler = (
                    wrapped.init_grad_scaler() if wrapped and wrapped.is_sharded else torch.amp.GradScaler("cuda")
                )

    @classmethod
    def from_partial_objects(  # type: ignore[override]
        cls, amp_dtype: str = "float16", allow_tf32: bool = False, **kwargs: Any
    ) -> Trainer:
        """AllenNLP's `from_partial_objects`, also taking `amp_dtype` and `allow_tf32`."""
        return super().from_partial_objects(amp_dtype=amp_dtype, allow_tf32=allow_tf32, **kwargs)

    def _autocast(self) -> ContextManager:
        """The autocast of the forward pass (`use_amp`), or nothing."""
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return autocast(self.cuda_device, self._autocast_dtype)

    def train(self) -> Dict[str, Any]:
        """Trains as AllenNLP's trainer does, stopping at a checkpoint on SIGTERM or SIGINT."""
        with stop_on_signals():
            return super().train()

    def _try_train(self) -> Tuple[Dict[str, Any], int]:
        metrics, epoch = super()._try_train()
        if self._serialization_dir is None or self._start_after_epochs_completed < self._num_epochs:
            return metrics, epoch
        last_metrics = os.path.join(self._serialization_dir, f"metrics_epoch_{self._num_epochs - 1}.json")
        if os.path.isfile(last_metrics):
            with open(last_metrics) as metrics_file:
                metrics = json.load(metrics_file)
        return metrics, epoch

    def batch_outputs(self, batch: TensorDict, for_training: bool) -> Dict[str, torch.Tensor]:
        """
        The model's outputs on `batch`; for training, with the model's regularization penalty added to
        the loss (as `"reg_loss"` too). A training batch without a loss raises `ValueError` (for a
        `MultiTaskModel`, naming the tasks and the heads' arguments) or `RuntimeError`.
        """
        with self._autocast():
            outputs = self._pytorch_model(**batch)
        if not for_training:
            return outputs
        if "loss" not in outputs:
            raise self._no_loss_error(batch)
        penalty = self.model.get_regularization_penalty()
        if penalty is not None:
            outputs["reg_loss"] = penalty
            outputs["loss"] += penalty
        return outputs

    def _no_loss_error(self, batch: TensorDict) -> Exception:
        if isinstance(self.model, MultiTaskModel):
            return self.model.no_loss_error(batch)
        # AllenNLP's words, for other models.
        return RuntimeError(
            "The model you are trying to optimize does not contain a 'loss' key in the output of model.forward(inputs)."
        )

    def _save_model_state(self, path: str) -> None:
        model = self.model if self._ddp_wrapped_model is None else self._ddp_wrapped_model
        save_atomically(model.state_dict(), path)

    @property
    def _resumes_data_loader(self) -> bool:
        """Whether checkpoints hold the training data loader's position and the random generators."""
        return isinstance(self.data_loader, MultiTaskDataLoader) and not self._distributed

    def get_checkpoint_state(self) -> Optional[TrainerCheckpoint]:
        checkpoint = super().get_checkpoint_state()
        if checkpoint is not None and self._resumes_data_loader:
            checkpoint.trainer_state["data_loader"] = self.data_loader.state_dict()  # type: ignore[attr-defined]
            checkpoint.trainer_state["random_state"] = random_state()
        if checkpoint is not None and self._scaler is not None:
            checkpoint.trainer_state["grad_scaler"] = self._scaler.state_dict()
        return checkpoint

    def _maybe_restore_checkpoint(self) -> None:
        super()._maybe_restore_checkpoint()
        checkpointer = self._checkpointer
        loaded = checkpointer.take_loaded_training_state() if isinstance(checkpointer, Checkpointer) else None
        if loaded is not None and "grad_scaler" in loaded and self._scaler is not None:
            self._scaler.load_state_dict(loaded["grad_scaler"])
        if loaded is not None and "data_loader" in loaded and self._resumes_data_loader:
            self.data_loader.resume(  # type: ignore[attr-defined]
                loaded["data_loader"],
                self._start_after_epochs_completed,
                self._start_after_batches_in_epoch_completed * self._num_gradient_accumulation_steps,
                loaded["random_state"],
            )
        sharded = self._ddp_wrapped_model is not None and self._ddp_wrapped_model.is_sharded
        if self._primary and self._serialization_dir and self._metric_tracker.best_epoch is not None and not sharded:
            self._repair_best_model_state()

    def _repair_best_model_state(self) -> None:
        """Makes `best.th` (which the metric tracker says exists) load, from the best epoch's checkpoint if left."""
        path = self._best_model_filename or os.path.join(self._serialization_dir, "best.th")
        self._best_model_filename = path
        if _loads(path):
            return
        best_epoch = self._metric_tracker.best_epoch
        source = self._best_epoch_checkpoint(best_epoch)
        if source is not None:
            logger.warning("%s does not load; restoring epoch %d's weights from %s.", path, best_epoch, source)
            link_atomically(source, path)
        else:
            logger.warning(
                "%s does not load, and no checkpoint of the best epoch, %d, is left: it now holds the weights of "
                "the checkpoint resumed from, which the archive holds unless a later epoch does better.",
                path,
                best_epoch,
            )
            self._save_model_state(path)

    def _best_epoch_checkpoint(self, best_epoch: int) -> Optional[str]:
        """The model state saved at the end of `best_epoch`, if it is left and loads."""
        if not isinstance(self._checkpointer, Checkpointer) or self._moving_average is not None:
            return None  # Under a moving average, best.th holds averaged weights, which checkpoints do not.
        source = self._checkpointer.model_state_path(best_epoch + 1, 0)
        return source if _loads(source) else None


# `from_params` reads the parameters of `from_partial_objects` from its signature: AllenNLP's, `amp_dtype` and
# `allow_tf32`.
_allennlp_signature = inspect.signature(AllenNlpGradientDescentTrainer.from_partial_objects.__func__)  # type: ignore[attr-defined]
_allennlp_parameters = list(_allennlp_signature.parameters.values())
GradientDescentTrainer.from_partial_objects.__func__.__signature__ = _allennlp_signature.replace(  # type: ignore[attr-defined]
    parameters=[
        *_allennlp_parameters[:-1],
        inspect.Parameter("amp_dtype", inspect.Parameter.KEYWORD_ONLY, default="float16", annotation=str),
        inspect.Parameter("allow_tf32", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool),
        _allennlp_parameters[-1],
    ]
)


def _loads(path: str) -> bool:
    """Whether `path` holds a state that `torch.load` loads."""
    try:
        torch.load(path, map_location="cpu")
    except Exception:  # A torn file fails in many ways: OSError, RuntimeError, EOFError...
        return False
    return True
