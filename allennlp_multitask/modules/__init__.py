from allennlp_multitask.modules.backbones import EmbedderBackbone, PretrainedTransformerBackbone
from allennlp_multitask.modules.token_embedders import (
    PretrainedTransformerEmbedder,
    PretrainedTransformerMismatchedEmbedder,
)

__all__ = [
    "EmbedderBackbone",
    "PretrainedTransformerBackbone",
    "PretrainedTransformerEmbedder",
    "PretrainedTransformerMismatchedEmbedder",
]
