from allennlp_multitask.data.dataset_readers import LabeledTextJsonReader
from allennlp_multitask.data.samplers import TemperatureSampler

__all__ = ["LabeledTextJsonReader", "TemperatureSampler"]
