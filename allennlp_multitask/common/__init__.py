from allennlp_multitask.common import archive_extraction, atomic_outputs, process_group_exit, weights_only_load

__all__ = ["archive_extraction", "atomic_outputs", "process_group_exit", "weights_only_load"]
