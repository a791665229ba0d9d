from allennlp_multitask.common import process_group_exit, transformers_compat

__all__ = ["process_group_exit", "transformers_compat"]
