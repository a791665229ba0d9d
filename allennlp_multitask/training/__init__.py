from allennlp_multitask.training import optimizers

__all__ = ["optimizers"]
