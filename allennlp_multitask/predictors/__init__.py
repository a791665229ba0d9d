from allennlp_multitask.predictors.multitask import MultiTaskPredictor

__all__ = ["MultiTaskPredictor"]
