from allennlp_multitask.models import heads
from allennlp_multitask.models.gradnorm import GradNorm
from allennlp_multitask.models.loss_weighting import (
    DynamicWeightAverage,
    LossWeighting,
    StaticLossWeighting,
    UncertaintyLossWeighting,
)
from allennlp_multitask.models.multitask import MultiTaskModel
from allennlp_multitask.models.routing import get_forward_arguments
from allennlp_multitask.models.scalarizer_weighting import ScalarizerLossWeighting

__all__ = [
    "DynamicWeightAverage",
    "GradNorm",
    "LossWeighting",
    "MultiTaskModel",
    "ScalarizerLossWeighting",
    "StaticLossWeighting",
    "UncertaintyLossWeighting",
    "get_forward_arguments",
    "heads",
]
