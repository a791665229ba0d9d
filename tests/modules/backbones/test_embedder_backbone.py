import torch
from allennlp.common import Params
from allennlp.data import Vocabulary
from allennlp.modules import Backbone

from allennlp_multitask.modules import EmbedderBackbone


def build(vocab: Vocabulary, with_encoder: bool) -> EmbedderBackbone:
    params = {
        "type": "embedder",
        "text_field_embedder": {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 6}}},
    }
    if with_encoder:
        params["encoder"] = {"type": "lstm", "input_size": 6, "hidden_size": 5, "bidirectional": True}
    return Backbone.from_params(Params(params), vocab=vocab)


def test_encodes_text_into_encoded_text_and_its_mask():
    vocab = Vocabulary({"tokens": {"a": 1, "b": 1}})
    tokens = torch.tensor([[2, 3, 0], [3, 0, 0]])
    for with_encoder, dim in [(False, 6), (True, 10)]:
        backbone = build(vocab, with_encoder)
        assert isinstance(backbone, EmbedderBackbone) and backbone.get_output_dim() == dim
        outputs = backbone(text={"tokens": {"tokens": tokens}})
        assert set(outputs) == {"encoded_text", "encoded_text_mask"}
        assert outputs["encoded_text"].shape == (2, 3, dim)
        assert outputs["encoded_text_mask"].tolist() == [[True, True, False], [True, False, False]]


def test_a_batch_of_empty_texts_gets_an_encoding_without_tokens():
    # AllenNLP's LSTM encoder raised IndexError on zero timesteps.
    backbone = build(Vocabulary({"tokens": {"a": 1, "b": 1}}), with_encoder=True)
    outputs = backbone(text={"tokens": {"tokens": torch.zeros((2, 0), dtype=torch.long)}})
    assert outputs["encoded_text"].shape == (2, 0, 10) and outputs["encoded_text_mask"].shape == (2, 0)
