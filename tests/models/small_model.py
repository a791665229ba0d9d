"""A small real backbone and stock classifier heads, and batches for them, shared by model-level tests."""

from typing import Any, Dict, List

import torch
from allennlp.data import Vocabulary
from allennlp.models.heads import ClassifierHead
from allennlp.modules.seq2vec_encoders import BagOfEmbeddingsEncoder
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.modules.token_embedders import Embedding

from allennlp_multitask.modules import EmbedderBackbone

DIM = 4


def small_vocab() -> Vocabulary:
    """Ten tokens `w0`…`w9` and the labels `neg` and `pos`."""
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace([f"w{i}" for i in range(10)], "tokens")
    vocab.add_tokens_to_namespace(["neg", "pos"], "labels")
    return vocab


def backbone(vocab: Vocabulary) -> EmbedderBackbone:
    embedder = BasicTextFieldEmbedder({"tokens": Embedding(DIM, num_embeddings=vocab.get_vocab_size())})
    return EmbedderBackbone(vocab, embedder)


def classifier(vocab: Vocabulary) -> ClassifierHead:
    return ClassifierHead(vocab, BagOfEmbeddingsEncoder(DIM, averaged=True))


def batch(tasks: List[str]) -> Dict[str, Any]:
    """A batch of three-token texts and alternating labels, one instance per entry of `tasks`."""
    size = len(tasks)
    tokens = torch.arange(2, 2 + 3 * size).view(size, 3) % 10 + 2
    return {"text": {"tokens": {"tokens": tokens}}, "label": torch.arange(size) % 2, "task": tasks}
