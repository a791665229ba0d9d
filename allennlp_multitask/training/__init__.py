from allennlp_multitask.training import callbacks, metrics, optimizers
from allennlp_multitask.training.gradient_descent_trainer import GradientDescentTrainer

__all__ = ["GradientDescentTrainer", "callbacks", "metrics", "optimizers"]
