"""
Tiny, random-init Hugging Face models with their tokenizer files, built offline from configs.

`save_tiny_model(architecture, directory)` writes one to `directory` (safetensors weights, `config.json`
and the tokenizer's files, as `save_pretrained` writes them), so that AllenNLP loads it by path as it
would a hub model. The tokenizers are trained here on `CORPUS` with the `tokenizers` library (and
`sentencepiece` for DeBERTa-v2), so nothing is downloaded. `ARCHITECTURES` names what can be built;
`installed(architecture)` says whether the installed transformers has it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# What the tokenizers are trained on, and what the golden recordings tokenize.
CORPUS = [
    "The film was great, and the team was good.",
    "What is the best oven for pasta?",
    "An awful film: the worst I have seen this year!",
    "Naïve readers enjoy the café's crème brûlée.",
    "Tokenizers split unbelievably long words into pieces.",
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore, 42 times a day.",
    "Is the team playing at home or away on Sunday?",
]

WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_vocabulary() -> list[str]:
    """
    A WordPiece vocabulary, fixed (the `tokenizers` WordPiece trainer's result varies from run to run):
    the special tokens, some whole words and word pieces of `CORPUS`, and every character alone or as `##c`,
    so that other words split into pieces rather than become `[UNK]`.
    """
    characters = "abcdefghijklmnopqrstuvwxyz0123456789.,!?:;'-"
    words = [
        "the",
        "film",
        "was",
        "great",
        "and",
        "team",
        "good",
        "what",
        "is",
        "best",
        "for",
        "an",
        "awful",
        "sea",
        "long",
        "words",
        "into",
        "day",
        "on",
    ]
    pieces = ["##s", "##ing", "##ly", "##able", "##er", "##ie", "un", "be", "##bel", "##iev"]
    return [*WORDPIECE_SPECIALS, *words, *pieces, *characters, *(f"##{c}" for c in characters)]


def wordpiece_tokenizer() -> object:
    """A lower-casing BERT WordPiece tokenizer (`tokenizers.Tokenizer`), `[CLS] A [SEP] B [SEP]` around text."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocabulary = {piece: index for index, piece in enumerate(dict.fromkeys(wordpiece_vocabulary()))}
    tokenizer = Tokenizer(models.WordPiece(vocabulary, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    cls, sep = vocabulary["[CLS]"], vocabulary["[SEP]"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tokenizer


def byte_level_bpe_tokenizer(specials: list[str], vocabulary_size: int = 320) -> object:
    """A byte-level BPE tokenizer (`tokenizers.Tokenizer`, GPT-2 style) with `specials` first in its vocabulary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocabulary_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    return tokenizer


def save_bert_tokenizer(directory: Path) -> int:
    """Saves a `BertTokenizerFast` (vocab.txt, tokenizer.json) to `directory`; returns its vocabulary size."""
    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece_tokenizer(), do_lower_case=True)
    tokenizer.save_pretrained(directory)
    return len(tokenizer)


def save_roberta_tokenizer(directory: Path) -> int:
    """Saves a `RobertaTokenizerFast` (vocab.json, merges.txt, tokenizer.json) to `directory`."""
    from tokenizers import processors
    from transformers import RobertaTokenizerFast

    tokenizer = byte_level_bpe_tokenizer(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    wrapped = RobertaTokenizerFast(tokenizer_object=tokenizer, add_prefix_space=False)
    wrapped.save_pretrained(directory)
    return len(wrapped)


def save_modernbert_tokenizer(directory: Path) -> int:
    """Saves ModernBERT's kind of tokenizer: a `PreTrainedTokenizerFast` over byte-level BPE (tokenizer.json)."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tokenizer = byte_level_bpe_tokenizer(["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "attention_mask"],
    )
    wrapped.save_pretrained(directory)
    return len(wrapped)


def save_sentencepiece_model(directory: Path, normalization: str = "identity") -> Path:
    """
    Trains a SentencePiece unigram model on `CORPUS` with the ids of DeBERTa-v3's ([PAD] 0, [CLS] 1, [SEP] 2,
    [UNK] 3) and saves it as `directory`/spm.model with the `tokenizer_config.json` of DeBERTa-v3's hub
    repositories (which have no tokenizer.json). `normalization` is SentencePiece's rule: "identity" keeps
    the files small; DeBERTa-v3's own, "nmt_nfkc", adds a 240 KB table. Training is deterministic.
    """
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 4),
        model_writer=model,
        model_type="unigram",
        vocab_size=120,
        hard_vocab_limit=False,
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        pad_piece="[PAD]",
        bos_piece="[CLS]",
        eos_piece="[SEP]",
        unk_piece="[UNK]",
        user_defined_symbols=["[MASK]"],
        num_threads=1,
        seed_sentencepiece_size=1000,
        normalization_rule_name=normalization,
        minloglevel=2,
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spm.model").write_bytes(model.getvalue())
    config = {"tokenizer_class": "DebertaV2Tokenizer", "do_lower_case": False, "split_by_punct": False}
    (directory / "tokenizer_config.json").write_text(json.dumps(config) + "\n")
    return directory / "spm.model"


def save_deberta_v2_tokenizer(directory: Path) -> int:
    """
    Saves a `DebertaV2TokenizerFast` converted from `save_sentencepiece_model`'s model (spm.model and
    tokenizer.json). Needs transformers 4.x: 5.x ignores `vocab_file` (it builds a 7-token tokenizer).
    """
    from transformers import DebertaV2TokenizerFast

    tokenizer = DebertaV2TokenizerFast(vocab_file=str(save_sentencepiece_model(directory)))
    tokenizer.save_pretrained(directory)
    return len(tokenizer)


def save_eurobert_tokenizer(directory: Path) -> int:
    """EuroBERT's special tokens (Llama 3's names) in a WordPiece vocabulary, `<|begin_of_text|> A <|end_of_text|>`."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tokenizer = wordpiece_tokenizer()
    specials = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "mask_token": "<|mask|>"}
    tokenizer.add_special_tokens(list(specials.values()))
    bos, eos = tokenizer.token_to_id(specials["bos_token"]), tokenizer.token_to_id(specials["eos_token"])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A <|end_of_text|>",
        pair="<|begin_of_text|> $A <|end_of_text|> $B <|end_of_text|>",
        special_tokens=[(specials["bos_token"], bos), (specials["eos_token"], eos)],
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        **specials,
        model_input_names=["input_ids", "attention_mask"],
    )
    wrapped.save_pretrained(directory)
    return len(wrapped)


SMALL = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}


def bert_like(model_type: str, **extra: object) -> Callable[[int], dict]:
    """The config of a BERT-shaped encoder of `model_type` with a WordPiece vocabulary of a given size."""
    return lambda size: {
        "model_type": model_type,
        **SMALL,
        "vocab_size": size,
        "max_position_embeddings": 64,
        "pad_token_id": 0,
        **extra,
    }


def eurobert_config(size: int) -> dict:
    """EuroBERT with its special-token ids inside the tiny vocabulary (by default they are Llama 3's, 128000+)."""
    return {
        "model_type": "eurobert",
        **SMALL,
        "vocab_size": size,
        "max_position_embeddings": 64,
        "pad_token_id": 0,
        "bos_token_id": size - 3,
        "eos_token_id": size - 2,
        "mask_token_id": size - 1,
    }


@dataclass(frozen=True)
class Architecture:
    """How to build one tiny model: its tokenizer (returns the vocabulary size) and its config's arguments."""

    save_tokenizer: Callable[[Path], int]
    config: Callable[[int], dict]


ARCHITECTURES: dict[str, Architecture] = {
    "bert": Architecture(save_bert_tokenizer, bert_like("bert", type_vocab_size=2)),
    "roberta": Architecture(
        save_roberta_tokenizer,
        lambda size: {
            "model_type": "roberta",
            **SMALL,
            "vocab_size": size,
            "max_position_embeddings": 66,
            "type_vocab_size": 1,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
        },
    ),
    "deberta_v2": Architecture(
        save_deberta_v2_tokenizer,
        lambda size: {
            "model_type": "deberta-v2",
            **SMALL,
            "vocab_size": size,
            "max_position_embeddings": 64,
            "type_vocab_size": 0,
            "pad_token_id": 0,
            "relative_attention": True,
            "position_buckets": 16,
            "pos_att_type": ["p2c", "c2p"],
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
            "position_biased_input": False,
            "max_relative_positions": -1,
        },
    ),
    "modernbert": Architecture(
        save_modernbert_tokenizer,
        lambda size: {
            "model_type": "modernbert",
            **SMALL,
            "vocab_size": size,
            "max_position_embeddings": 64,
            "global_attn_every_n_layers": 2,
            "local_attention": 8,
            "pad_token_id": 3,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "cls_token_id": 1,
            "sep_token_id": 2,
            "reference_compile": False,
        },
    ),
    # Architectures that transformers 4.49 lacks, each with a WordPiece tokenizer.
    "gte": Architecture(save_bert_tokenizer, bert_like("gte", type_vocab_size=1)),
    "nomic_bert": Architecture(save_bert_tokenizer, bert_like("nomic_bert", type_vocab_size=2)),
    "jina_embeddings_v3": Architecture(
        save_bert_tokenizer, bert_like("jina_embeddings_v3", type_vocab_size=1, bos_token_id=2, eos_token_id=3)
    ),
    "eurobert": Architecture(save_eurobert_tokenizer, eurobert_config),
}


def installed(architecture: str) -> bool:
    """Whether the installed transformers has `architecture` (a key of `ARCHITECTURES`)."""
    from transformers import CONFIG_MAPPING

    return ARCHITECTURES[architecture].config(100)["model_type"] in CONFIG_MAPPING


def save_tiny_model(architecture: str, directory: Path, seed: int = 0) -> Path:
    """
    Builds the tiny `architecture` (a key of `ARCHITECTURES`), random-init from `seed`, and saves it with
    its tokenizer to `directory`, where `AutoModel`/`AutoTokenizer.from_pretrained` (and so AllenNLP's
    `model_name`) load it. Returns `directory`.
    """
    import torch
    from transformers import AutoConfig, AutoModel

    entry = ARCHITECTURES[architecture]
    directory = Path(directory)
    size = entry.save_tokenizer(directory)
    arguments = entry.config(size)
    config = AutoConfig.for_model(arguments.pop("model_type"), **arguments)
    torch.manual_seed(seed)
    AutoModel.from_config(config).save_pretrained(directory, safe_serialization=True)
    (directory / "tiny_model.json").write_text(json.dumps({"architecture": architecture, "seed": seed}) + "\n")
    return directory
