from allennlp_multitask.data.data_loaders import MultiTaskDataLoader
from allennlp_multitask.data.dataset_readers import ConllTagsReader, LabeledTextJsonReader, MultiTaskDatasetReader
from allennlp_multitask.data.samplers import TemperatureSampler

__all__ = [
    "ConllTagsReader",
    "LabeledTextJsonReader",
    "MultiTaskDataLoader",
    "MultiTaskDatasetReader",
    "TemperatureSampler",
]
