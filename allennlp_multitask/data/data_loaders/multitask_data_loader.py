from typing import Any, Callable, Optional

from allennlp.common import Params
from allennlp.data.data_loaders import DataLoader
from allennlp.data.data_loaders import MultiTaskDataLoader as AllenNlpMultiTaskDataLoader

from allennlp_multitask.common.registration import replace_registration


@replace_registration(DataLoader, "multitask")
class MultiTaskDataLoader(AllenNlpMultiTaskDataLoader):
    """
    AllenNLP's multitask data loader, which also takes a `batch_size`: given, it is the `scheduler`'s
    `batch_size` (for every task). `allennlp evaluate --batch-size N` sets the data loader's
    `batch_size`, which AllenNLP's loader refuses; here it sets the batch size of the evaluation.

    Registered as a `DataLoader` with name "multitask", replacing AllenNLP's registration.

    # Parameters

    batch_size : `int`, optional (default = `None`)
        Overrides the scheduler's `batch_size` (a configuration key: the scheduler is built with it).
    **kwargs
        The parameters of AllenNLP's `MultiTaskDataLoader` (`scheduler`, `sampler`, ...).
    """

    @classmethod
    def from_params(  # type: ignore[override]
        cls,
        params: Params,
        constructor_to_call: Optional[Callable[..., "MultiTaskDataLoader"]] = None,
        constructor_to_inspect: Optional[Callable[..., Any]] = None,
        **extras: Any,
    ) -> "MultiTaskDataLoader":
        batch_size = params.pop_int("batch_size", None)
        if batch_size is not None and "scheduler" in params:
            scheduler = params.pop("scheduler")
            scheduler["batch_size"] = batch_size
            params["scheduler"] = scheduler
        return super().from_params(params, constructor_to_call, constructor_to_inspect, **extras)
