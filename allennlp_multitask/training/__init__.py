from allennlp_multitask.training import callbacks, metrics

__all__ = ["callbacks", "metrics"]
