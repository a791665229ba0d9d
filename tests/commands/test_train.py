"""Our `TrainModel`, which `allennlp train` builds from the whole configuration in each training worker."""

import gc
import json
import os
import stat
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


def test_built_with_a_serialization_directory_not_yet_made_as_allennlps_is(in_repo_root, tmp_path):
    # AllenNLP's TrainModel saves the vocabulary there first, making the directories it needs.
    params = Params.from_file(str(EXAMPLE_CONFIG), json.dumps({"trainer.num_epochs": 1}))
    serialization_dir = tmp_path / "runs" / "new"
    built = AllenNlpTrainModel.from_params(params, serialization_dir=str(serialization_dir), local_rank=0)
    assert isinstance(built, TrainModel)
    assert (serialization_dir / "vocabulary" / "tokens.txt").exists()


@pytest.mark.slow
def test_a_run_leaves_files_as_allennlp_does_readable_under_the_umask(quick_start_run):
    # As a plain open() and os.makedirs leave them: 0644 files and 0755 directories under umask 022, so that
    # teammates and serving jobs can read a trained model.
    run_dir, _ = quick_start_run
    umask = os.umask(0o022)
    os.umask(umask)
    modes = {str(path.relative_to(run_dir)): stat.S_IMODE(path.stat().st_mode) for path in run_dir.rglob("*")}
    assert {"model.tar.gz", "best.th", "metrics.json", "config.json", "meta.json", "vocabulary"} <= set(modes)
    assert any(name.startswith("model_state_") for name in modes)
    assert {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o777 if (run_dir / name).is_dir() else 0o666) & ~umask
    } == {}
