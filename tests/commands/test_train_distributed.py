"""
`allennlp train` of the bundled example with `"distributed": {"cuda_devices": [-1, -1]}`: AllenNLP spawns two
CPU workers (gloo) and wraps the model in its default DDP accelerator (no `find_unused_parameters`).
"""

import json
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List

import pytest
from allennlp.commands.train import train_model, train_model_from_file
from allennlp.common import Params
from allennlp.data import DataLoader, DatasetReader, Instance, Vocabulary
from torch.multiprocessing import ProcessRaisedException

from tests.commands.runs import DATA, VALIDATION_FILES, allennlp, final_metrics
from tests.commands.scored_text_reader import ScoredTextJsonReader
from tests.conftest import EXAMPLE_CONFIG, REPO_ROOT
from tests.distributed_workers import WORKERS, on_two_workers
from tests.models.conll_example import conll_params

pytestmark = pytest.mark.distributed


def train_on_two_workers(run: Path, callbacks: List[Dict[str, Any]], recover: bool = False) -> None:
    """The example for 2 epochs, on two CPU workers, with these trainer callbacks."""
    overrides = {"distributed": {"cuda_devices": [-1, -1]}, "trainer.num_epochs": 2, "trainer.callbacks": callbacks}
    include = ["allennlp_multitask", "tests.commands.runs"]
    train_model_from_file(str(EXAMPLE_CONFIG), str(run), json.dumps(overrides), recover, include_package=include)


@pytest.fixture(scope="module")
def two_worker_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("two_workers") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(REPO_ROOT)
        train_on_two_workers(run, [])
    return run


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_cpu_workers_train_an_archive_whose_evaluation_repeats_their_validation_metrics(
    two_worker_run, in_repo_root, tmp_path, monkeypatch
):
    run = two_worker_run
    trained = json.loads((run / "metrics.json").read_text())
    assert trained["epoch"] == 1

    # The archive holds the weights of the best epoch, whose validation metrics the workers computed
    # on their halves of the data and summed across workers.
    evaluation_file = tmp_path / "evaluation.json"
    allennlp(
        *["evaluate", str(run / "model.tar.gz"), json.dumps(VALIDATION_FILES), "--output-file", str(evaluation_file)],
        monkeypatch=monkeypatch,
    )
    evaluation = json.loads(evaluation_file.read_text())
    for head in ["sentiment", "topic"]:
        assert evaluation[f"{head}_accuracy"] == trained[f"best_validation_{head}_accuracy"], head
    # Losses differ: each is a mean of batch losses, and the workers batch their halves differently.


def write_scored_sentences(source: str, count: int, target: Path) -> str:
    """The first `count` sentences of a topic file of the example, scored by their number of words."""
    lines = Path(DATA, source).read_text().splitlines()[:count]
    sentences = [json.loads(line)["sentence"] for line in lines]
    target.write_text("".join(json.dumps({"sentence": s, "score": len(s.split()) / 10}) + "\n" for s in sentences))
    return str(target)


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_cpu_workers_train_taggers_and_a_regression_head_whose_validation_metrics_equal_evaluate(
    in_repo_root, tmp_path, monkeypatch
):
    # The CoNLL example (a POS tagger, a NER tagger with span F1, a topic classifier), plus a regression task.
    score_files = {
        "train": write_scored_sentences("news_topic_train.jsonl", 12, tmp_path / "score_train.jsonl"),
        "validation": write_scored_sentences("news_topic_validation.jsonl", 8, tmp_path / "score_validation.jsonl"),
    }
    regression_head = {"type": "regression", "seq2vec_encoder": {"type": "boe", "embedding_dim": 64}}
    params = conll_params(
        {
            "dataset_reader.readers.score": {"type": "scored_text_json"},
            "train_data_path.score": score_files["train"],
            "validation_data_path.score": score_files["validation"],
            "model.heads.score": regression_head,
            "model.arg_name_mapping.score": {"score": "label"},
            "distributed": {"cuda_devices": [-1, -1]},
            "trainer.num_epochs": 3,
        }
    )
    validation_files = {**params["validation_data_path"].as_dict(), "score": score_files["validation"]}
    run = tmp_path / "run"
    train_model(params, str(run), include_package=["allennlp_multitask", ScoredTextJsonReader.__module__])
    trained = json.loads((run / "metrics.json").read_text())

    evaluation_file = tmp_path / "evaluation.json"
    allennlp(
        *["evaluate", str(run / "model.tar.gz"), json.dumps(validation_files), "--output-file", str(evaluation_file)],
        monkeypatch=monkeypatch,
    )
    evaluation = json.loads(evaluation_file.read_text())
    del evaluation["loss"]  # a mean of batch losses, which the workers batch differently
    assert {"ner_f1-measure-overall", "pos_accuracy", "topic_accuracy", "score_pearson", "score_spearman"} <= set(
        evaluation
    )
    assert evaluation["ner_f1-measure-overall"] > 0 and evaluation["score_pearson"] != 0
    for key, value in evaluation.items():
        if key.startswith("score_"):  # Predictions may differ in their last bits with the batches' padding.
            assert trained[f"best_validation_{key}"] == pytest.approx(value, rel=1e-6), key
        else:  # Ratios of counts.
            assert trained[f"best_validation_{key}"] == value, key


def text_of(instance: Instance) -> str:
    """The text of an instance of the example, whose tasks name their text fields differently."""
    field = instance.fields.get("sentence") or instance.fields["question"]
    return " ".join(str(token) for token in field.tokens)


def example_training_batches(rank: int, vocab: Vocabulary) -> dict:
    """The texts of the example's training instances that worker `rank` reads, and its batches' tasks."""
    params = Params.from_file(str(EXAMPLE_CONFIG))
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    loader = DataLoader.from_params(params.pop("data_loader"), reader=reader, data_path=params.pop("train_data_path"))
    loader.index_with(vocab)
    texts = [text_of(instance) for instance in loader.iter_instances()]
    return {"texts": texts, "length": len(loader), "batch_tasks": [batch["task"][0] for batch in loader]}


def test_each_worker_reads_its_own_share_of_every_task_in_batches_of_the_same_tasks(in_repo_root, tmp_path):
    params = Params.from_file(str(EXAMPLE_CONFIG))
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    files = params.pop("train_data_path").as_dict()
    everything = {task: list(reader.read(path, force_task=task)) for task, path in files.items()}
    vocab = Vocabulary.from_instances(instance for instances in everything.values() for instance in instances)

    workers = on_two_workers(example_training_batches, vocab, out_dir=tmp_path)

    all_texts = Counter(text_of(instance) for instances in everything.values() for instance in instances)
    assert sum((Counter(worker["texts"]) for worker in workers), Counter()) == all_texts
    assert [len(worker["texts"]) for worker in workers] == [sum(all_texts.values()) // WORKERS] * WORKERS
    # 100 instances of each task per worker, in batches of 16: 7 per task, alternating, on both workers,
    # so every batch runs the same head on both (and DDP's steps pair up).
    assert workers[0]["batch_tasks"] == workers[1]["batch_tasks"] == ["sentiment", "topic"] * 7
    assert workers[0]["length"] == workers[1]["length"] == 14


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_both_at_one_checkpoint_and_train_r_ends_as_if_never_stopped(
    two_worker_run, in_repo_root, tmp_path
):
    run = tmp_path / "run"
    callbacks = [{"type": "test_sigterm_once", "epoch": 0, "batch": 3, "rank": 1}]
    with pytest.raises(ProcessRaisedException, match=r"Stopped on SIGTERM after 0 epoch\(s\) and 3 batch\(es\)"):
        train_on_two_workers(run, callbacks)
    checkpoints = sorted(path.name for path in run.glob("*_state_e*.th"))
    assert checkpoints == ["model_state_e0_b3.th", "training_state_e0_b3.th"]  # Written once, by the primary.
    train_on_two_workers(run, callbacks, recover=True)
    # AllenNLP's way under distributed training (re-seeded, the finished batches read again): exact here,
    # where validation draws no random numbers and the model has no dropout.
    assert final_metrics(run) == final_metrics(two_worker_run)
