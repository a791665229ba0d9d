from allennlp_multitask.training.metrics.gradient_conflicts import GradientConflicts

__all__ = ["GradientConflicts"]
