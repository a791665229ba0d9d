from allennlp_multitask.training import metrics

__all__ = ["metrics"]
