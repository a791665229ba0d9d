"""Shared fixtures. Everything expensive (training, building a tiny transformer) happens once a session."""

import os

# No network here: keep Hugging Face and wandb from trying to reach one.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
# Two cores: one intra-op thread per process keeps in-process training and the spawned distributed
# workers from fighting over them.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

import allennlp_multitask  # noqa: F401  (registers our components)

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO_ROOT / "examples" / "sentiment_and_topic.jsonnet"


@pytest.fixture
def in_repo_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs the test from the repository root, where the example configs' data paths point."""
    monkeypatch.chdir(REPO_ROOT)
    return REPO_ROOT


@pytest.fixture(scope="session")
def quick_start_run(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, subprocess.CompletedProcess]:
    """
    The README's quick start, run once: examples/train_and_predict.sh trains the bundled two-task example
    with `allennlp train` and predicts with `allennlp predict`. Returns its run directory, and the finished
    process with its output (the commands' logs are in its `stderr`).
    """
    run_dir = tmp_path_factory.mktemp("quick_start") / "run"
    # The environment's `allennlp` and `python`, whichever way the tests were started.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    finished = subprocess.run(
        ["bash", "examples/train_and_predict.sh", str(run_dir)],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return run_dir, finished


@pytest.fixture(scope="session")
def example_archive(quick_start_run: Tuple[Path, subprocess.CompletedProcess]) -> Path:
    """The bundled two-task example, as trained by the quick start."""
    return quick_start_run[0] / "model.tar.gz"


@pytest.fixture(scope="session")
def conll_example_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The serialization directory of the bundled CoNLL example, trained once with AllenNLP's own training code."""
    from allennlp.commands.train import train_model_from_file

    serialization_dir = tmp_path_factory.mktemp("conll_pos_ner")
    with contextlib.chdir(REPO_ROOT):
        train_model_from_file(str(REPO_ROOT / "examples" / "conll_pos_ner.jsonnet"), str(serialization_dir))
    return serialization_dir


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init, tiny BERT and its WordPiece vocabulary, saved where `from_pretrained` can load it."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny_bert")
    words = ["the", "a", "film", "was", "great", "awful", "what", "is", "best", "oven", "pasta", "team", "good"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(str(directory / "vocab.txt")).save_pretrained(directory)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(directory)
    return directory


def tracked_copy(destination: Path) -> Path:
    """The checkout's files (those git tracks, where it is a git checkout), copied to `destination`."""
    ignore = shutil.ignore_patterns(".git", ".venv*", "runs", "build", "dist", "*.egg-info", "__pycache__", ".*cache")
    shutil.copytree(REPO_ROOT, destination, ignore=ignore)
    return destination


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our wheel, built by `uv build` from a copy of the checkout (nothing is written into the repository)."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed (the README's test command runs under `uv run`, which sets $UV)"
    directory = tmp_path_factory.mktemp("wheel")
    source = tracked_copy(directory / "checkout")
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(directory / "dist"), str(source)], check=True)
    (wheel,) = (directory / "dist").glob("allennlp_multitask-*.whl")
    return wheel


# Session fixtures that run `allennlp` or `uv` in child processes (tens of seconds): tests using them are
# `slow` and `subprocess`, so that `pytest -m "not slow"` stays a fast loop.
SLOW_FIXTURES = {"quick_start_run", "example_archive", "built_wheel"}


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.subprocess)
