from allennlp_multitask.training.callbacks.jacobian_descent import JacobianDescentCallback

__all__ = ["JacobianDescentCallback"]
