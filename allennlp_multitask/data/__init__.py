from allennlp_multitask.data.data_loaders import MultiTaskDataLoader
from allennlp_multitask.data.dataset_readers import LabeledTextJsonReader
from allennlp_multitask.data.samplers import TemperatureSampler

__all__ = ["LabeledTextJsonReader", "MultiTaskDataLoader", "TemperatureSampler"]
