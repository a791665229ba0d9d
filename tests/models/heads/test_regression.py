import pytest
import torch
from allennlp.common import Params
from allennlp.data import Instance, Token, Vocabulary
from allennlp.data.fields import MetadataField, TensorField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer
from allennlp.models.heads import Head
from allennlp.modules.seq2vec_encoders import BagOfEmbeddingsEncoder
from allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
from allennlp.modules.token_embedders import Embedding

from allennlp_multitask import MultiTaskModel
from allennlp_multitask.models.heads import RegressionHead
from allennlp_multitask.modules import EmbedderBackbone
from tests.models.heads.toy_training import fit

DIM = 3
LENGTHS = [4, 2, 3, 1, 4, 2]


def regression(**kwargs) -> RegressionHead:
    return RegressionHead(Vocabulary(), BagOfEmbeddingsEncoder(DIM, averaged=True), **kwargs)


def toy_inputs(padding_value: float = 0.0) -> dict[str, torch.Tensor]:
    """Random encodings whose gold value is a fixed linear function of their masked average."""
    generator = torch.Generator().manual_seed(0)
    encoded = torch.randn(len(LENGTHS), max(LENGTHS), DIM, generator=generator)
    mask = torch.arange(max(LENGTHS)).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)
    encoded[~mask] = padding_value
    average = (encoded * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    label = average @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    return {"encoded_text": encoded, "encoded_text_mask": mask, "label": label}


def test_predicts_one_value_per_instance_with_mean_squared_error():
    torch.manual_seed(0)
    head = regression()
    inputs = toy_inputs()
    outputs = head(**inputs)
    assert outputs["prediction"].shape == (len(LENGTHS),)
    assert torch.allclose(outputs["loss"], ((outputs["prediction"] - inputs["label"]) ** 2).mean())
    # Labels as a (batch, 1) tensor, as a one-element TensorField per instance gives them, are the same.
    column = head(**{**inputs, "label": inputs["label"].unsqueeze(1)})
    assert torch.allclose(column["loss"], outputs["loss"])
    with pytest.raises(ValueError, match=r"labels of shape \(3,\) for 6 instances"):
        head(**{**inputs, "label": inputs["label"][:3]})


def test_padding_does_not_change_the_prediction():
    torch.manual_seed(0)
    head = regression()
    assert torch.allclose(head(**toy_inputs())["prediction"], head(**toy_inputs(padding_value=50.0))["prediction"])


def test_learns_toy_data_with_correlation_metrics():
    torch.manual_seed(0)
    head = regression()
    inputs = toy_inputs()
    losses = fit(head, inputs, steps=150)
    assert losses[-1] < 0.01 * losses[0]
    head.get_metrics(reset=True)
    head(**inputs)
    metrics = head.get_metrics(reset=True)
    assert set(metrics) == {"pearson", "spearman"}
    assert metrics["pearson"] > 0.99 and metrics["spearman"] == pytest.approx(1.0)


def test_human_readable_prediction_is_python_floats():
    head = regression()
    readable = head.make_output_human_readable(head(**toy_inputs()))
    assert isinstance(readable["prediction"], list) and len(readable["prediction"]) == len(LENGTHS)
    assert all(isinstance(value, float) for value in readable["prediction"])
    assert head.make_output_human_readable({}) == {}


def test_configured_with_a_feedforward():
    config = Params(
        {
            "type": "regression",
            "seq2vec_encoder": {"type": "boe", "embedding_dim": DIM},
            "feedforward": {"input_dim": DIM, "num_layers": 1, "hidden_dims": 5, "activations": "tanh"},
            "dropout": 0.1,
        }
    )
    head = Head.from_params(config, vocab=Vocabulary())
    assert isinstance(head, RegressionHead) and head._projection.in_features == 5
    assert head(**toy_inputs())["prediction"].shape == (len(LENGTHS),)


def test_multitask_model_outputs_one_float_per_instance():
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["good", "bad", "film"], "tokens")
    embedder = BasicTextFieldEmbedder({"tokens": Embedding(DIM, num_embeddings=vocab.get_vocab_size())})
    model = MultiTaskModel(vocab, EmbedderBackbone(vocab, embedder), {"score": regression()})
    indexers = {"tokens": SingleIdTokenIndexer()}
    instances = [
        Instance(
            {
                "text": TextField([Token(word) for word in text.split()], indexers),
                "label": TensorField(torch.tensor(value)),
                "task": MetadataField("score"),
            }
        )
        for text, value in [("good film", 0.9), ("bad", 0.1), ("bad film", 0.2)]
    ]
    outputs = model.forward_on_instances(instances)
    assert all(isinstance(output["score_prediction"], float) for output in outputs)
    assert "score_pearson" in model.get_metrics()
