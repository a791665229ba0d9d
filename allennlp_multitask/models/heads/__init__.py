from allennlp_multitask.models.heads.regression import RegressionHead
from allennlp_multitask.models.heads.tagger import TaggerHead

__all__ = ["RegressionHead", "TaggerHead"]
