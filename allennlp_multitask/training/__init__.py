from allennlp_multitask.training import callbacks, learning_rate_schedulers, metrics, optimizers
from allennlp_multitask.training.checkpointer import Checkpointer
from allennlp_multitask.training.gradient_descent_trainer import GradientDescentTrainer

__all__ = ["Checkpointer", "GradientDescentTrainer", "callbacks", "learning_rate_schedulers", "metrics", "optimizers"]
