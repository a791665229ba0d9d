from allennlp_multitask.common import atomic_outputs, process_group_exit, transformers_compat

__all__ = ["atomic_outputs", "process_group_exit", "transformers_compat"]
