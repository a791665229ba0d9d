from allennlp_multitask.training import callbacks, metrics, optimizers

__all__ = ["callbacks", "metrics", "optimizers"]
