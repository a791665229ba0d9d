import math
from typing import Dict, Mapping, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.data.data_loaders import DataLoader
from allennlp.data.data_loaders.multitask_epoch_sampler import MultiTaskEpochSampler


@MultiTaskEpochSampler.register("temperature")
class TemperatureSampler(MultiTaskEpochSampler):
    """
    Temperature-scaled task sampling, as used to mix tasks for T5 and languages for multilingual BERT:
    each task's share of an epoch is proportional to its dataset size to the power `1 / temperature`.
    Temperature 1 samples in proportion to size (like AllenNLP's "proportional" sampler); larger
    temperatures flatten the mix towards uniform, so small tasks are seen more often than their size
    alone would give them.

    Used by AllenNLP's multitask data loader when it has `instances_per_epoch`:
    `"data_loader": {"type": "multitask", "instances_per_epoch": 1000,
    "sampler": {"type": "temperature", "temperature": 2.0}, ...}`.

    Registered as a `MultiTaskEpochSampler` with name "temperature".

    # Parameters

    temperature : `float`, optional (default = `1.0`)
        `T` above; positive and finite.
    dataset_sizes : `Dict[str, int]`, optional (default = `None`)
        Each task's dataset size. By default the sizes are the lengths of the task's data loaders,
        which lazy loaders (with `max_instances_in_memory`) do not have; give them here instead.
    """

    def __init__(self, temperature: float = 1.0, dataset_sizes: Optional[Dict[str, int]] = None) -> None:
        if not (0 < temperature < math.inf):
            raise ConfigurationError(f"temperature sampler needs a positive, finite temperature, got {temperature}.")
        negative = sorted(task for task, size in (dataset_sizes or {}).items() if size < 0)
        if negative:
            raise ConfigurationError(f"temperature sampler's dataset_sizes are negative for {negative}.")
        self.temperature = float(temperature)
        self.dataset_sizes = dataset_sizes

    def get_task_proportions(self, data_loaders: Mapping[str, DataLoader]) -> Dict[str, float]:
        sizes = {task: self._size_of(task, loader) for task, loader in data_loaders.items()}
        nonempty = {task: size for task, size in sizes.items() if size > 0}
        if not nonempty:
            raise ValueError(f"temperature sampler found no instances in any task's dataset: {sizes}.")
        # n ** (1 / T), computed from logarithms relative to the largest dataset so that it neither
        # overflows nor underflows, whatever the sizes and temperature.
        largest = max(math.log(size) for size in nonempty.values())
        scores = {task: math.exp((math.log(size) - largest) / self.temperature) for task, size in nonempty.items()}
        total = sum(scores.values())
        return {task: scores.get(task, 0.0) / total for task in data_loaders}

    def _size_of(self, task: str, loader: DataLoader) -> int:
        if self.dataset_sizes is not None:
            if task not in self.dataset_sizes:
                raise ValueError(
                    f"temperature sampler's dataset_sizes has no size for task '{task}'; "
                    f"it has {sorted(self.dataset_sizes)}."
                )
            return self.dataset_sizes[task]
        try:
            return len(loader)  # type: ignore[arg-type]
        except TypeError:
            raise ValueError(
                f"temperature sampler cannot tell the size of task '{task}': its data loader has no length "
                "(lazy loading). Give the sizes as the sampler's dataset_sizes."
            ) from None
