from allennlp_multitask.common import (
    archive_extraction,
    atomic_outputs,
    cuda_amp,
    process_group_exit,
    weights_only_load,
)

__all__ = ["archive_extraction", "atomic_outputs", "cuda_amp", "process_group_exit", "weights_only_load"]
