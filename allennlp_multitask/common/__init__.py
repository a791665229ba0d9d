from allennlp_multitask.common import process_group_exit

__all__ = ["process_group_exit"]
