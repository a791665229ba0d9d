"""Shared fixtures. Everything expensive (training, building a tiny transformer) happens once a session."""
import os

# No network here: keep Hugging Face and wandb from trying to reach one.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
# Two cores: one intra-op thread per process keeps in-process training and the spawned distributed
# workers from fighting over them.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

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
def example_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled two-task example, trained once with AllenNLP's own training code."""
    from allennlp.commands.train import train_model_from_file

    serialization_dir = tmp_path_factory.mktemp("example_run")
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        train_model_from_file(str(EXAMPLE_CONFIG), str(serialization_dir), force=True)
    finally:
        os.chdir(cwd)
    return serialization_dir / "model.tar.gz"


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init, tiny BERT and its WordPiece vocabulary, saved where `from_pretrained` can load it."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny_bert")
    words = ["the", "a", "film", "was", "great", "awful", "what", "is", "best", "oven", "pasta", "team", "good"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(directory / "vocab.txt")).save_pretrained(directory)
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
