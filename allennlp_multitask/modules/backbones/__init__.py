from allennlp_multitask.modules.backbones.embedder_backbone import EmbedderBackbone

__all__ = ["EmbedderBackbone"]
