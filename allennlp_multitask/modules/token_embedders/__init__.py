from allennlp_multitask.modules.token_embedders.pretrained_transformer_embedder import PretrainedTransformerEmbedder
from allennlp_multitask.modules.token_embedders.pretrained_transformer_mismatched_embedder import (
    PretrainedTransformerMismatchedEmbedder,
)

__all__ = ["PretrainedTransformerEmbedder", "PretrainedTransformerMismatchedEmbedder"]
