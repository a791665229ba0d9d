from allennlp_multitask.commands.train import TrainModel

__all__ = ["TrainModel"]
