from allennlp_multitask.common import transformers_compat

__all__ = ["transformers_compat"]
