from allennlp_multitask.modules.backbones.embedder_backbone import EmbedderBackbone
from allennlp_multitask.modules.backbones.pretrained_transformer_backbone import PretrainedTransformerBackbone

__all__ = ["EmbedderBackbone", "PretrainedTransformerBackbone"]
