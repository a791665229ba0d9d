from allennlp_multitask.data.dataset_readers import LabeledTextJsonReader

__all__ = ["LabeledTextJsonReader"]
