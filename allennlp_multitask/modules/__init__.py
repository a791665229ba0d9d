from allennlp_multitask.modules.backbones import EmbedderBackbone

__all__ = ["EmbedderBackbone"]
