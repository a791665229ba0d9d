from allennlp_multitask.data.data_loaders.multitask_data_loader import MultiTaskDataLoader

__all__ = ["MultiTaskDataLoader"]
