"""Our `TrainModel`, which `allennlp train` builds from the whole configuration in each training worker."""

import gc
import json
from pathlib import Path

import pytest
from allennlp.commands.train import TrainModel as AllenNlpTrainModel
from allennlp.commands.train import train_model_from_file
from allennlp.common import Params
from allennlp.data import Instance
from allennlp.training import GradientDescentTrainer, TrainerCallback
from torch.multiprocessing import ProcessRaisedException

from allennlp_multitask.commands import TrainModel
from tests.commands.runs import VALIDATION_FILES
from tests.conftest import EXAMPLE_CONFIG
from tests.distributed_workers import on_two_workers


def built_as_a_worker_does(rank: int, overrides: dict, serialization_dir: Path) -> bool:
    """Whether `allennlp train`'s worker `rank` builds our `TrainModel` from the example's configuration."""
    params = Params.from_file(str(EXAMPLE_CONFIG), json.dumps(overrides))
    built = AllenNlpTrainModel.from_params(params, serialization_dir=str(serialization_dir), local_rank=rank)
    return isinstance(built, TrainModel)


@pytest.mark.distributed
def test_evaluate_on_test_fails_under_distributed_training_before_training_naming_the_command_to_run(
    in_repo_root, tmp_path
):
    # AllenNLP's own `TrainModel` trains, then fails (gloo) or hangs (NCCL) as the primary worker alone
    # evaluates its share of the test data.
    test_data = {"test_data_path": VALIDATION_FILES}
    assert on_two_workers(built_as_a_worker_does, test_data, tmp_path, out_dir=tmp_path) == [True, True]
    with_evaluation = {**test_data, "evaluate_on_test": True}
    message = r"'evaluate_on_test' does not work under distributed training(.|\n)*run `allennlp evaluate "
    with pytest.raises(ProcessRaisedException, match=message):
        on_two_workers(built_as_a_worker_does, with_evaluation, tmp_path, out_dir=tmp_path)
    # In a single process it is accepted.
    assert built_as_a_worker_does(0, with_evaluation, tmp_path)


def live_instances() -> int:
    """Instances the garbage collector tracks: alive, or unreachable and not yet collected."""
    return sum(isinstance(candidate, Instance) for candidate in gc.get_objects())


@TrainerCallback.register("test_collect_then_pause_the_collector")
class CollectThenPauseTheCollector(TrainerCallback):
    """Collects the garbage of building the model and trainer, then turns the collector off."""

    def on_start(self, trainer: GradientDescentTrainer, is_primary: bool = True, **kwargs) -> None:
        super().on_start(trainer, is_primary, **kwargs)
        gc.collect()
        gc.disable()


def test_the_instances_are_freed_when_training_returns_not_at_the_next_full_collection(in_repo_root, tmp_path):
    # AllenNLP's callbacks and trainer, and AllenNLP's multitask loader and its iterators, were reference
    # cycles: every instance stayed in memory until the collector's next full pass (at exit for
    # `allennlp train`, where that pass took 0.9 s for 66,000 sentences).
    gc.collect()
    before = live_instances()
    enabled = gc.isenabled()
    try:
        trainer = {"num_epochs": 1, "callbacks": [{"type": "test_collect_then_pause_the_collector"}]}
        overrides = json.dumps({"trainer": trainer})
        train_model_from_file(str(EXAMPLE_CONFIG), str(tmp_path / "run"), overrides=overrides)
        assert not gc.isenabled()  # Nothing collected since training started.
        assert live_instances() == before
    finally:
        if enabled:
            gc.enable()
