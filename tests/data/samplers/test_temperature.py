import json
import math
from collections import Counter
from typing import Any

import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DataLoader, DatasetReader, Vocabulary
from allennlp.data.data_loaders.multitask_epoch_sampler import MultiTaskEpochSampler

from allennlp_multitask.data import TemperatureSampler

SIZES = {"small": 10, "medium": 40, "large": 160}
INSTANCES_PER_EPOCH = 2100


@pytest.fixture(scope="module")
def data_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("sampler_data")
    paths = {}
    for task, size in SIZES.items():
        path = directory / f"{task}.jsonl"
        path.write_text("".join(json.dumps({"text": f"{task} {i}", "label": "x"}) + "\n" for i in range(size)))
        paths[task] = str(path)
    return paths


def multitask_loader(data_paths: dict[str, str], sampler: dict[str, Any], **kwargs: Any) -> DataLoader:
    """AllenNLP's multitask data loader, as configured in Jsonnet, drawing `INSTANCES_PER_EPOCH` instances an epoch."""
    reader = {"type": "multitask", "readers": {task: {"type": "labeled_text_json"} for task in SIZES}}
    params = Params(
        {
            "type": "multitask",
            "scheduler": {"type": "homogeneous_roundrobin", "batch_size": 100},
            "sampler": sampler,
            "instances_per_epoch": INSTANCES_PER_EPOCH,
            **kwargs,
        }
    )
    loader = DataLoader.from_params(params, reader=DatasetReader.from_params(Params(reader)), data_path=data_paths)
    loader.index_with(Vocabulary.from_instances(loader.iter_instances()))
    return loader


def sampled_proportions(loader: DataLoader) -> dict[str, float]:
    """The share of each task among the instances of one epoch, counted from the batches themselves."""
    counts = Counter(task for batch in loader for task in batch["task"])
    return {task: counts[task] / INSTANCES_PER_EPOCH for task in SIZES}


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0])
def test_epoch_mix_follows_size_to_the_power_one_over_temperature(data_paths, temperature):
    loader = multitask_loader(data_paths, {"type": "temperature", "temperature": temperature})
    scores = {task: size ** (1 / temperature) for task, size in SIZES.items()}
    expected = {task: score / sum(scores.values()) for task, score in scores.items()}
    actual = sampled_proportions(loader)
    for task in SIZES:
        # The loader rounds each task's count down, so a share may fall short by one instance.
        assert actual[task] == pytest.approx(expected[task], abs=1 / INSTANCES_PER_EPOCH), task
    assert actual["large"] > actual["medium"] > actual["small"]


@pytest.mark.parametrize("temperature, allennlp_sampler", [(1.0, {"type": "proportional"}), (1e9, {"type": "uniform"})])
def test_limits_are_allennlps_proportional_and_uniform_samplers(data_paths, temperature, allennlp_sampler):
    ours = sampled_proportions(multitask_loader(data_paths, {"type": "temperature", "temperature": temperature}))
    theirs = sampled_proportions(multitask_loader(data_paths, allennlp_sampler))
    assert ours == pytest.approx(theirs, abs=1 / INSTANCES_PER_EPOCH)


def test_lazy_loaders_need_dataset_sizes(data_paths):
    lazy = {"max_instances_in_memory": {task: 8 for task in SIZES}}
    loader = multitask_loader(data_paths, {"type": "temperature", "temperature": 2.0}, **lazy)
    with pytest.raises(ValueError, match=r"task 'small': its data loader has no length.*dataset_sizes"):
        sampled_proportions(loader)
    sized = {"type": "temperature", "temperature": 2.0, "dataset_sizes": {"small": 1, "medium": 4, "large": 0}}
    assert sampled_proportions(multitask_loader(data_paths, sized, **lazy)) == pytest.approx(
        {"small": 1 / 3, "medium": 2 / 3, "large": 0.0}, abs=1 / INSTANCES_PER_EPOCH
    )


def test_dataset_sizes_must_name_every_task():
    sampler = TemperatureSampler(dataset_sizes={"small": 3})
    with pytest.raises(ValueError, match=r"no size for task 'large'; it has \['small'\]"):
        sampler.get_task_proportions({"small": None, "large": None})  # type: ignore[dict-item]


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.inf, math.nan])
def test_temperature_must_be_positive_and_finite(temperature):
    with pytest.raises(ConfigurationError, match="positive, finite temperature"):
        MultiTaskEpochSampler.from_params(Params({"type": "temperature", "temperature": temperature}))


def test_is_registered_for_allennlps_multitask_data_loader():
    assert MultiTaskEpochSampler.by_name("temperature") is TemperatureSampler
