from allennlp_multitask.training.learning_rate_schedulers.reduce_on_plateau import (
    ReduceOnPlateauLearningRateScheduler,
)

__all__ = ["ReduceOnPlateauLearningRateScheduler"]
