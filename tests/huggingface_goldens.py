"""
What AllenNLP's transformer pieces produce on the tiny models in tests/fixtures/huggingface, as plain data.

`tokenizer_observations` (wordpieces, ids, offsets, type ids, special tokens, `max_length`, the mismatched
path), `embedder_outputs` (the matched and mismatched embedders' outputs) and `adamw_updates`
(`huggingface_adamw`'s parameters after each step) are recorded once with transformers 4.49 by
tests/fixtures/huggingface/record.py and compared with what the installed stack gives by
tests/test_huggingface_goldens.py.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch

from tests.huggingface_models import CORPUS, save_sentencepiece_model

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "huggingface"
# The four architectures transformers 4.49 has, recorded with it.
RECORDED = ["bert", "roberta", "deberta_v2", "modernbert"]
GOLDEN_TOKENS = FIXTURES / "goldens.json"
GOLDEN_TENSORS = FIXTURES / "goldens.safetensors"
# A multitask model trained with `allennlp train` on 4.49, and what it predicted there.
ARCHIVE_CONFIG = FIXTURES / "transformer_multitask.jsonnet"
ARCHIVE = FIXTURES / "archive" / "trained_on_transformers_4_49.tar.gz"
ARCHIVE_PREDICTIONS = FIXTURES / "archive" / "predictions.json"
# The archive's transformer, as its config names it: relative to the repository root, where it is loaded from.
ARCHIVED_TRANSFORMER = "tests/fixtures/huggingface/bert"
# The tiny ModernBERT's tokenizer as transformers 5 saves it.
WRITTEN_BY_TRANSFORMERS_5 = FIXTURES / "written_by_transformers_5" / "modernbert"
ARCHIVE_INPUTS = Path(__file__).resolve().parent.parent / "examples" / "data" / "predict_inputs.jsonl"

# No tab or newline: transformers 5 rebuilds DeBERTa-v2's normaliser (tabs become spaces) where 4.49 used the
# saved one, which for this identity-normalised SentencePiece model maps a tab to [UNK]. Real DeBERTa-v3 models
# normalise tabs to spaces on both (NFKC).
TEXTS = [*CORPUS[:4], "Unbelievably  spaced text,with—odd punctuation…", ""]
# Where DeBERTa-v3's NFKC normalisation matters: a ligature, full-width letters, a circled digit, a superscript, a tab.
NFKC_TEXTS = ["\ufb01ne \uff46\uff55\uff4c\uff4c width \u2460 x\u00b2", "The film\twas great"]
WORDS = ["Naïve", "readers", "enjoy", "unbelievably", "long", "crème", "brûlée", "!"]
SECOND_WORDS = ["What", "is", "best", "?"]
MAX_LENGTH = 8
# The `max_length` of the indexers and embedders: long texts fold into several segments.
SEGMENT_LENGTH = 6

# `huggingface_adamw`'s settings recorded: with and without bias correction, with and without weight decay.
ADAMW_CASES: Dict[str, Dict[str, Any]] = {
    "corrected": {"lr": 0.01, "correct_bias": True},
    "uncorrected_decay": {"lr": 0.01, "correct_bias": False, "weight_decay": 0.1},
    "corrected_decay": {"lr": 0.003, "betas": [0.8, 0.95], "eps": 1e-8, "correct_bias": True, "weight_decay": 0.01},
}
ADAMW_STEPS = 4


def model_directory(architecture: str) -> Path:
    """Where the tiny `architecture` recorded with 4.49 lies."""
    return FIXTURES / architecture


def attempt(compute: Callable[[], Any]) -> Any:
    """
    What `compute` returns, or `{"error": ...}` where AllenNLP's indexer asserts: on transformers 4.x, a
    plain `PreTrainedTokenizerFast` (ModernBERT's) adds no special tokens in `build_inputs_with_special_tokens`,
    so `max_length` folding fails its length check there.
    """
    try:
        return compute()
    except AssertionError:
        return {"error": "AssertionError"}


def token_data(tokens: List[Any]) -> List[list]:
    """AllenNLP `Token`s as `[text, text_id, type_id, idx, idx_end]` lists."""
    return [[token.text, token.text_id, token.type_id, token.idx, token.idx_end] for token in tokens]


def tokenizer_observations(model_name: str) -> Dict[str, Any]:
    """What `PretrainedTransformerTokenizer` and the two transformer indexers make of `TEXTS` and `WORDS`."""
    from allennlp.data import Token, Vocabulary
    from allennlp.data.token_indexers import PretrainedTransformerIndexer, PretrainedTransformerMismatchedIndexer
    from allennlp.data.tokenizers import PretrainedTransformerTokenizer

    tokenizer = PretrainedTransformerTokenizer(model_name)
    plain = PretrainedTransformerTokenizer(model_name, add_special_tokens=False)
    truncating = PretrainedTransformerTokenizer(model_name, max_length=MAX_LENGTH)
    words, offsets = tokenizer.intra_word_tokenize(WORDS)
    pair, first_offsets, second_offsets = tokenizer.intra_word_tokenize_sentence_pair(WORDS, SECOND_WORDS)
    indexer = PretrainedTransformerIndexer(model_name, max_length=SEGMENT_LENGTH)
    mismatched = PretrainedTransformerMismatchedIndexer(model_name, max_length=SEGMENT_LENGTH)
    long_text = " ".join(TEXTS[:3])
    return {
        "tokenize": [token_data(tokenizer.tokenize(text)) for text in TEXTS],
        "tokenize_without_special_tokens": [token_data(plain.tokenize(text)) for text in TEXTS],
        "tokenize_max_length": [token_data(truncating.tokenize(text)) for text in TEXTS],
        "tokenize_max_length_without_special_tokens": token_data(
            PretrainedTransformerTokenizer(model_name, add_special_tokens=False, max_length=MAX_LENGTH).tokenize(
                long_text
            )
        ),
        "special_tokens": {
            name: token_data(getattr(tokenizer, name))
            for name in [
                "single_sequence_start_tokens",
                "single_sequence_end_tokens",
                "sequence_pair_start_tokens",
                "sequence_pair_mid_tokens",
                "sequence_pair_end_tokens",
            ]
        },
        "type_ids": [
            tokenizer.single_sequence_token_type_id,
            tokenizer.sequence_pair_first_token_type_id,
            tokenizer.sequence_pair_second_token_type_id,
        ],
        "numbers_of_special_tokens": [
            tokenizer.num_special_tokens_for_sequence(),
            tokenizer.num_special_tokens_for_pair(),
        ],
        "pair": token_data(tokenizer.add_special_tokens(plain.tokenize(TEXTS[0]), plain.tokenize(TEXTS[1]))),
        "intra_word_tokenize": {"tokens": token_data(words), "offsets": offsets},
        "intra_word_tokenize_sentence_pair": {
            "tokens": token_data(pair),
            "offsets": [first_offsets, second_offsets],
        },
        "indexer": attempt(lambda: indexer.tokens_to_indices(tokenizer.tokenize(long_text), Vocabulary())),
        "indexer_without_max_length": PretrainedTransformerIndexer(model_name).tokens_to_indices(
            tokenizer.tokenize(long_text), Vocabulary()
        ),
        "mismatched_indexer": attempt(
            lambda: mismatched.tokens_to_indices([Token(word) for word in WORDS], Vocabulary())
        ),
    }


def nfkc_sentencepiece_observations(directory: Path) -> Dict[str, Any]:
    """
    What `PretrainedTransformerTokenizer` makes of `NFKC_TEXTS` with a DeBERTa-v3-like tokenizer that has only
    an spm.model normalising as DeBERTa-v3's does ("nmt_nfkc"), built in `directory` (240 KB: not committed,
    rebuilt by the test; its hash says it is the same model).
    """
    import hashlib

    from allennlp.data.tokenizers import PretrainedTransformerTokenizer

    model = save_sentencepiece_model(directory, "nmt_nfkc")
    tokenizer = PretrainedTransformerTokenizer(str(directory))
    return {
        "spm_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "tokenize": [token_data(tokenizer.tokenize(text)) for text in NFKC_TEXTS],
    }


def text_field_tensors(indexer: Any, token_lists: List[List[Any]]) -> Dict[str, torch.Tensor]:
    """The padded tensors of a batch of `TextField`s of `token_lists`, indexed by `indexer`."""
    from allennlp.data import Batch, Instance, Vocabulary
    from allennlp.data.fields import TextField

    batch = Batch([Instance({"text": TextField(tokens, {"tokens": indexer})}) for tokens in token_lists])
    batch.index_instances(Vocabulary())
    return batch.as_tensor_dict()["text"]["tokens"]


def embedder_outputs(architecture: str, model_name: str) -> Dict[str, torch.Tensor]:
    """
    The outputs of `PretrainedTransformerEmbedder` and `PretrainedTransformerMismatchedEmbedder` (eval mode),
    with and without `max_length`, on a batch of `TEXTS` (`WORDS` for the mismatched one), each with its
    mask (`KEY.mask`: what is not padding, where the outputs mean something); keys are prefixed with
    `architecture`.
    """
    from allennlp.data import Token
    from allennlp.data.token_indexers import PretrainedTransformerIndexer, PretrainedTransformerMismatchedIndexer
    from allennlp.data.tokenizers import PretrainedTransformerTokenizer
    from allennlp.modules.token_embedders import (
        PretrainedTransformerEmbedder,
        PretrainedTransformerMismatchedEmbedder,
    )

    tokenizer = PretrainedTransformerTokenizer(model_name)
    texts = [tokenizer.tokenize(text) for text in TEXTS[:4]]
    words = [[Token(word) for word in WORDS], [Token(word) for word in SECOND_WORDS]]
    outputs = {}
    with torch.no_grad():
        for suffix, max_length in [("", None), ("_max_length", SEGMENT_LENGTH)]:
            for name, indexer, embedder, batch in [
                ("embedder", PretrainedTransformerIndexer, PretrainedTransformerEmbedder, texts),
                (
                    "mismatched_embedder",
                    PretrainedTransformerMismatchedIndexer,
                    PretrainedTransformerMismatchedEmbedder,
                    words,
                ),
            ]:
                indexing = functools.partial(text_field_tensors, indexer(model_name, max_length=max_length), batch)
                tensors = attempt(indexing)
                if "error" not in tensors:
                    module = embedder(model_name, max_length=max_length).eval()
                    outputs[f"{architecture}.{name}{suffix}"] = module(**tensors).contiguous()
                    outputs[f"{architecture}.{name}{suffix}.mask"] = tensors["mask"]
    return outputs


def adamw_inputs() -> Dict[str, torch.Tensor]:
    """Fixed starting parameters and the gradients of each step (recorded too, so nothing depends on RNGs)."""
    generator = torch.Generator().manual_seed(21)
    inputs = {
        "initial.weight": torch.randn(5, 3, generator=generator),
        "initial.bias": torch.randn(3, generator=generator),
    }
    for step in range(ADAMW_STEPS):
        for name in ("weight", "bias"):
            inputs[f"gradient.{step}.{name}"] = torch.randn(inputs[f"initial.{name}"].shape, generator=generator) * 0.1
    return inputs


def adamw_updates(inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """
    The parameters after each step of AllenNLP's `"huggingface_adamw"` optimizer in each of `ADAMW_CASES`,
    from `inputs` (see `adamw_inputs`); keys `adamw.CASE.STEP.NAME`.
    """
    from allennlp.common import Params
    from allennlp.training.optimizers import Optimizer

    updates = {}
    for case, settings in ADAMW_CASES.items():
        parameters = {name: torch.nn.Parameter(inputs[f"initial.{name}"].clone()) for name in ("weight", "bias")}
        optimizer = Optimizer.from_params(
            model_parameters=list(parameters.items()), params=Params({"type": "huggingface_adamw", **settings})
        )
        for step in range(ADAMW_STEPS):
            for name, parameter in parameters.items():
                parameter.grad = inputs[f"gradient.{step}.{name}"].clone()
            optimizer.step()
            for name, parameter in parameters.items():
                updates[f"adamw.{case}.{step}.{name}"] = parameter.detach().clone()
    return updates


def archive_inputs() -> List[Dict[str, Any]]:
    """The JSON inputs the archive predicts: the bundled example's."""
    return [json.loads(line) for line in ARCHIVE_INPUTS.read_text().splitlines() if line.strip()]


def load_goldens() -> Dict[str, Any]:
    """The recorded tokenizer observations: `{"versions": ..., ARCHITECTURE: tokenizer_observations}`."""
    return json.loads(GOLDEN_TOKENS.read_text())


def load_golden_tensors() -> Dict[str, torch.Tensor]:
    """The recorded embedder outputs, AdamW inputs and AdamW updates."""
    from safetensors.torch import load_file

    return load_file(str(GOLDEN_TENSORS))
