from allennlp_multitask.commands.adapters import ExportAdapters, MergeAdapters
from allennlp_multitask.commands.serve import Serve
from allennlp_multitask.commands.train import TrainModel

__all__ = ["ExportAdapters", "MergeAdapters", "Serve", "TrainModel"]
