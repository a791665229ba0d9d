"""
AllenNLP's `"reduce_on_plateau"` learning-rate scheduler on today's torch.

AllenNLP 2.10's wrapper always passes `verbose` to `torch.optim.lr_scheduler.ReduceLROnPlateau`, which torch
deprecated in 2.2 and has since removed: every config naming the scheduler failed at construction with
`TypeError: ... unexpected keyword argument 'verbose'`. Ours builds torch's scheduler with the same arguments
but `verbose`, so the schedule is AllenNLP's, and with `verbose` logs each reduction itself, as torch printed it.
"""

import logging
from typing import List, Optional, Union

import torch
from allennlp.training.learning_rate_schedulers import LearningRateScheduler
from allennlp.training.learning_rate_schedulers.pytorch_lr_schedulers import (
    ReduceOnPlateauLearningRateScheduler as AllenNlpReduceOnPlateau,
)

from allennlp_multitask.common.registration import replace_registration

logger = logging.getLogger(__name__)


@replace_registration(LearningRateScheduler, "reduce_on_plateau")
class ReduceOnPlateauLearningRateScheduler(AllenNlpReduceOnPlateau):
    """
    Torch's `ReduceLROnPlateau`: the learning rate is multiplied by `factor` once the validation metric
    has not improved for `patience` epochs. AllenNLP's wrapper, whose `verbose` today's torch refuses.
    Registered as a `LearningRateScheduler` with name "reduce_on_plateau", replacing AllenNLP's.

    # Parameters

    optimizer : `torch.optim.Optimizer`
        Given by the trainer.
    mode : `str`, optional (default = `"min"`)
        `"min"`: the metric should fall; `"max"`: it should rise.
    factor : `float`, optional (default = `0.1`)
        What the learning rate is multiplied by at each reduction.
    patience : `int`, optional (default = `10`)
        Epochs without improvement before a reduction.
    verbose : `bool`, optional (default = `False`)
        Logs each reduction (torch printed it, before it dropped the argument).
    threshold_mode : `str`, optional (default = `"rel"`)
        `"rel"`: an improvement is relative to the best metric; `"abs"`: absolute.
    threshold : `float`, optional (default = `1e-4`)
        The smallest change that counts as an improvement.
    cooldown : `int`, optional (default = `0`)
        Epochs after a reduction before bad epochs are counted again.
    min_lr : `Union[float, List[float]]`, optional (default = `0`)
        The lowest learning rate, for all parameter groups or for each.
    eps : `float`, optional (default = `1e-8`)
        A reduction smaller than this is not made.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        verbose: bool = False,
        threshold_mode: str = "rel",
        threshold: float = 1e-4,
        cooldown: int = 0,
        min_lr: Union[float, List[float]] = 0,
        eps: float = 1e-8,
    ) -> None:
        lr_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer=optimizer,
            mode=mode,  # type: ignore[arg-type]
            factor=factor,
            patience=patience,
            threshold_mode=threshold_mode,  # type: ignore[arg-type]
            threshold=threshold,
            cooldown=cooldown,
            min_lr=min_lr,
            eps=eps,
        )
        # Past AllenNLP's __init__ (which builds torch's scheduler with `verbose`) to its wrapper base's.
        super(AllenNlpReduceOnPlateau, self).__init__(lr_scheduler)
        self.verbose = verbose

    def step(self, metric: Optional[float] = None) -> None:
        before = [group["lr"] for group in self.lr_scheduler.optimizer.param_groups]
        super().step(metric)
        if self.verbose:
            for index, (old, group) in enumerate(zip(before, self.lr_scheduler.optimizer.param_groups)):
                if group["lr"] < old:
                    logger.info("Reducing the learning rate of parameter group %d to %.4e.", index, group["lr"])
