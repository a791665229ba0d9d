from allennlp_multitask.data.dataset_readers.conll_tags import ConllTagsReader
from allennlp_multitask.data.dataset_readers.labeled_text_json import LabeledTextJsonReader
from allennlp_multitask.data.dataset_readers.multitask import MultiTaskDatasetReader

__all__ = ["ConllTagsReader", "LabeledTextJsonReader", "MultiTaskDatasetReader"]
