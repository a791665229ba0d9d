from allennlp_multitask.data.samplers.temperature import TemperatureSampler

__all__ = ["TemperatureSampler"]
