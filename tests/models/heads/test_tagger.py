import itertools
from typing import Any

import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.models.heads import Head
from allennlp.modules import FeedForward

from allennlp_multitask.models.heads import TaggerHead
from tests.models.heads.toy_training import fit

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
GOLD = [  # One sentence per row; the rows are 5, 3 and 4 tokens long.
    ["B-PER", "I-PER", "O", "B-LOC", "O"],
    ["O", "B-LOC", "I-LOC"],
    ["B-LOC", "O", "B-PER", "I-PER"],
]
MAX_LENGTH = 5


@pytest.fixture
def vocab() -> Vocabulary:
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(LABELS, "ner_tags")
    return vocab


def tagger(vocab: Vocabulary, **kwargs: Any) -> TaggerHead:
    return TaggerHead(vocab, input_dim=len(LABELS), label_namespace="ner_tags", **kwargs)


def toy_inputs(padding_value: float = 0.0) -> dict[str, torch.Tensor]:
    """Encodings that reveal each token's gold label (its one-hot, plus noise); padding holds `padding_value`."""
    generator = torch.Generator().manual_seed(0)
    tags = torch.zeros(len(GOLD), MAX_LENGTH, dtype=torch.long)
    mask = torch.zeros(len(GOLD), MAX_LENGTH, dtype=torch.bool)
    for row, labels in enumerate(GOLD):
        tags[row, : len(labels)] = torch.tensor([LABELS.index(label) for label in labels])
        mask[row, : len(labels)] = True
    encoded = torch.nn.functional.one_hot(tags, len(LABELS)).float()
    encoded = encoded + 0.1 * torch.randn(encoded.shape, generator=generator)
    encoded[~mask] = padding_value
    return {"encoded_text": encoded, "encoded_text_mask": mask, "tags": tags * mask}


@pytest.mark.parametrize("use_crf", [False, True])
def test_outputs_have_batch_first_shapes_and_padding_is_ignored(vocab, use_crf):
    torch.manual_seed(0)
    head = tagger(vocab, use_crf=use_crf, label_encoding="BIO")
    outputs = head(**toy_inputs())
    assert outputs["logits"].shape == (3, MAX_LENGTH, len(LABELS))
    assert outputs["predicted_tags"].shape == (3, MAX_LENGTH) and outputs["loss"].dim() == 0
    assert not outputs["predicted_tags"][~outputs["mask"]].any()
    # Anything at padded positions, encodings or labels, changes neither the loss nor the predictions.
    noisy = toy_inputs(padding_value=50.0)
    noisy["tags"] = noisy["tags"].masked_fill(~noisy["encoded_text_mask"], LABELS.index("I-LOC"))
    noisy_outputs = head(**noisy)
    assert torch.allclose(noisy_outputs["loss"], outputs["loss"])
    assert torch.equal(noisy_outputs["predicted_tags"], outputs["predicted_tags"])


@pytest.mark.parametrize("use_crf", [False, True])
def test_loss_is_averaged_over_the_batch(vocab, use_crf):
    torch.manual_seed(0)
    head = tagger(vocab, use_crf=use_crf)
    inputs = toy_inputs()
    doubled = {name: torch.cat([value, value]) for name, value in inputs.items()}
    assert torch.allclose(head(**doubled)["loss"], head(**inputs)["loss"])


@pytest.mark.parametrize("use_crf", [False, True])
def test_learns_toy_data_to_perfect_accuracy_and_span_f1(vocab, use_crf):
    torch.manual_seed(0)
    head = tagger(vocab, use_crf=use_crf, label_encoding="BIO")
    inputs = toy_inputs()
    losses = fit(head, inputs, steps=60)
    assert losses[-1] < 0.1 * losses[0]
    head.get_metrics(reset=True)
    head(**inputs)
    assert head.get_metrics() == {
        "accuracy": 1.0,
        "precision-overall": pytest.approx(1.0),
        "recall-overall": pytest.approx(1.0),
        "f1-measure-overall": pytest.approx(1.0),
    }


def test_reports_only_accuracy_without_a_label_encoding(vocab):
    head = tagger(vocab)
    head(**toy_inputs())
    assert set(head.get_metrics()) == {"accuracy"}


def test_crf_with_label_encoding_decodes_only_valid_sequences(vocab):
    # Every token's logits favour I-LOC, which may not start a BIO span.
    logits_bias = torch.full((len(LABELS),), -5.0)
    logits_bias[LABELS.index("I-LOC")] = 5.0

    def predictions(head: TaggerHead) -> list[list[str]]:
        with torch.no_grad():
            head._projection.weight.zero_()
            head._projection.bias.copy_(logits_bias)
        return head.make_output_human_readable(head(**toy_inputs()))["tags"]

    assert predictions(tagger(vocab)) == [["I-LOC"] * len(labels) for labels in GOLD]
    for sentence in predictions(tagger(vocab, use_crf=True, label_encoding="BIO")):
        assert sentence[0] != "I-LOC"
        for previous, current in itertools.pairwise(sentence):
            assert not current.startswith("I-") or previous[2:] == current[2:], sentence


def test_human_readable_tags_are_label_strings_trimmed_to_each_sentence(vocab):
    torch.manual_seed(0)
    head = tagger(vocab)
    inputs = toy_inputs()
    fit(head, inputs, steps=60)
    readable = head.make_output_human_readable(head(**inputs))
    assert readable["tags"] == GOLD
    assert head.make_output_human_readable({"logits": torch.zeros(1, 2, 5)}).keys() == {"logits"}


def test_feedforward_runs_before_the_projection(vocab):
    feedforward = FeedForward(len(LABELS), num_layers=1, hidden_dims=7, activations=torch.nn.ReLU())
    head = tagger(vocab, feedforward=feedforward, dropout=0.1)
    assert head._projection.in_features == 7
    assert head(**toy_inputs())["logits"].shape == (3, MAX_LENGTH, len(LABELS))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"label_namespace": "pos_tags"}, "label_namespace 'pos_tags' is not in the vocabulary"),
        ({"label_encoding": "BILOU"}, "label_encoding must be one of"),
        (
            {"feedforward": {"input_dim": 3, "num_layers": 1, "hidden_dims": 4, "activations": "relu"}},
            "feedforward takes inputs of size 3, but input_dim is 5",
        ),
    ],
)
def test_configuration_mistakes_fail_at_construction(vocab, params, message):
    config = Params({"type": "tagger", "input_dim": 5, "label_namespace": "ner_tags", **params})
    with pytest.raises(ConfigurationError, match=message):
        Head.from_params(config, vocab=vocab)
