"""
AllenNLP's transformer tokenizer, indexers, embedders and `pretrained_transformer` backbone, in our multitask
model, on architectures that transformers 4.49 lacks (tiny random-init models with WordPiece vocabularies).
"""

import os
from pathlib import Path
from typing import Dict

import pytest
import torch
import transformers
from allennlp.commands.train import train_model_from_file
from allennlp.data import Token, Vocabulary
from allennlp.data.token_indexers import PretrainedTransformerIndexer, PretrainedTransformerMismatchedIndexer
from allennlp.data.tokenizers import PretrainedTransformerTokenizer
from allennlp.modules.token_embedders import PretrainedTransformerEmbedder, PretrainedTransformerMismatchedEmbedder

from allennlp_multitask import MultiTaskModel
from tests.huggingface_goldens import ARCHIVE_CONFIG, text_field_tensors
from tests.huggingface_models import installed, save_tiny_model

NEW = ["gte", "nomic_bert", "jina_embeddings_v3", "eurobert"]
# What each tokenizer puts around a text: EuroBERT's are Llama 3's, inside the tiny vocabulary.
AROUND = {"eurobert": ("<|begin_of_text|>", "<|end_of_text|>")}


@pytest.fixture(scope="module")
def model_directories(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """The tiny models that the installed transformers can build, saved once a module."""
    root = tmp_path_factory.mktemp("new_architectures")
    return {name: save_tiny_model(name, root / name) for name in NEW if installed(name)}


@pytest.fixture(params=NEW)
def model_name(request: pytest.FixtureRequest, model_directories: Dict[str, Path]) -> str:
    if request.param not in model_directories:
        pytest.skip(f"transformers {transformers.__version__} has no {request.param} (transformers 5 has)")
    return str(model_directories[request.param])


def architecture_of(model_name: str) -> str:
    return Path(model_name).name


def test_tokenizer_and_mismatched_path(model_name):
    start, end = AROUND.get(architecture_of(model_name), ("[CLS]", "[SEP]"))
    tokenizer = PretrainedTransformerTokenizer(model_name)
    tokens = tokenizer.tokenize("The film was great!")
    assert [token.text for token in tokens] == [start, "the", "film", "was", "great", "!", end]
    assert [(token.idx, token.idx_end) for token in tokens[1:-1]] == [(0, 3), (4, 8), (9, 12), (13, 18), (18, 19)]
    truncated = PretrainedTransformerTokenizer(model_name, max_length=4).tokenize("the film was")
    assert [token.text for token in truncated] == [start, "the", "film", end]
    wordpieces, offsets = tokenizer.intra_word_tokenize(["Unbelievably", "good"])
    assert wordpieces[0].text == start and wordpieces[-1].text == end
    assert offsets[1] == (len(wordpieces) - 2, len(wordpieces) - 2)


def test_indexer_folds_with_special_tokens_per_segment(model_name):
    tokenizer = PretrainedTransformerTokenizer(model_name)
    tokens = tokenizer.tokenize("the film was great and the team was good")
    ids = [token.text_id for token in tokens]
    indexed = PretrainedTransformerIndexer(model_name, max_length=5).tokens_to_indices(tokens, Vocabulary())
    pieces = ids[1:-1]
    assert indexed["token_ids"] == [
        piece for i in range(0, len(pieces), 3) for piece in [ids[0], *pieces[i : i + 3], ids[-1]]
    ]
    assert indexed["segment_concat_mask"] == [True] * len(indexed["token_ids"])


@pytest.mark.parametrize("max_length", [None, 5])
def test_embedders(model_name, max_length):
    tokenizer = PretrainedTransformerTokenizer(model_name)
    texts = [tokenizer.tokenize(text) for text in ["the film was great and the team was good", "what is best ?"]]
    with torch.no_grad():
        tensors = text_field_tensors(PretrainedTransformerIndexer(model_name, max_length=max_length), texts)
        embedded = PretrainedTransformerEmbedder(model_name, max_length=max_length).eval()(**tensors)
        words = [[Token(word) for word in ["Unbelievably", "good", "films"]], [Token("what")]]
        mismatched_tensors = text_field_tensors(
            PretrainedTransformerMismatchedIndexer(model_name, max_length=max_length), words
        )
        mismatched = PretrainedTransformerMismatchedEmbedder(model_name, max_length=max_length).eval()(
            **mismatched_tensors
        )
    assert embedded.shape == (2, len(texts[0]), 16) and torch.isfinite(embedded).all()
    assert mismatched.shape == (2, 3, 16) and torch.isfinite(mismatched).all()


def test_multitask_model_trains_on_the_pretrained_transformer_backbone(model_name, tmp_path, in_repo_root, monkeypatch):
    """Trained as archive/model.tar.gz was on 4.49: our model, AllenNLP's backbone, `huggingface_adamw`."""
    monkeypatch.setenv("TRANSFORMER_MODEL", model_name)
    overrides = '{"trainer": {"num_epochs": 1}}'
    model = train_model_from_file(str(ARCHIVE_CONFIG), str(tmp_path), overrides=overrides)
    assert isinstance(model, MultiTaskModel)
    assert os.path.exists(tmp_path / "model.tar.gz")
