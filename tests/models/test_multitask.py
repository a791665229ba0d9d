import copy
import io
import math
import pickle
from typing import Any, Dict, List, Optional

import pytest
import torch
from allennlp.common import Lazy, Params
from allennlp.data import Vocabulary
from allennlp.models import MultiTaskModel as AllenNlpMultiTaskModel
from allennlp.models.heads import ClassifierHead, Head
from allennlp.modules.seq2vec_encoders import BagOfEmbeddingsEncoder

from allennlp_multitask import MultiTaskModel
from allennlp_multitask.models import DynamicWeightAverage, UncertaintyLossWeighting
from allennlp_multitask.training.metrics import GradientConflicts
from tests.models.small_model import DIM, backbone, batch, classifier


class TextReadingHead(Head):
    """A head that also reads the raw `text` input, and records every call's arguments."""

    def __init__(self, vocab: Vocabulary) -> None:
        super().__init__(vocab)
        self.projection = torch.nn.Linear(DIM, 2)
        self.calls: List[Dict[str, Any]] = []

    def forward(  # type: ignore
        self, encoded_text: torch.Tensor, text: Dict, label: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        self.calls.append({"encoded_text": encoded_text, "text": text, "label": label})
        logits = self.projection(encoded_text.mean(dim=1))
        outputs = {"logits": logits}
        if label is not None:
            outputs["loss"] = torch.nn.functional.cross_entropy(logits, label)
        return outputs


class KwargsHead(Head):
    def __init__(self, vocab: Vocabulary) -> None:
        super().__init__(vocab)
        self.received: Dict[str, Any] = {}

    def forward(self, **kwargs) -> Dict[str, torch.Tensor]:  # type: ignore
        self.received = kwargs
        return {"rows": kwargs["encoded_text"].new_ones(len(kwargs["task"]))}


def test_is_allennlps_class_with_its_output_and_metric_names(vocab):
    model = MultiTaskModel(vocab, backbone(vocab), {"a": classifier(vocab), "b": classifier(vocab)})
    assert isinstance(model, AllenNlpMultiTaskModel)
    assert model.default_predictor == "multitask"
    outputs = model(**batch(["a", "b", "a"]))
    assert set(outputs) == {
        "encoded_text",
        "encoded_text_mask",
        "a_logits",
        "a_probs",
        "a_loss",
        "b_logits",
        "b_probs",
        "b_loss",
        "loss",
    }
    assert outputs["a_logits"].shape == (2, 2) and outputs["b_logits"].shape == (1, 2)
    assert set(model.get_metrics()) == {"a_accuracy", "b_accuracy"}
    assert set(model.state_dict()) == {
        "_backbone._text_field_embedder.token_embedder_tokens.weight",
        *(f"_heads.{head}._classification_layer.{p}" for head in "ab" for p in ("weight", "bias")),
    }


def test_heads_sharing_an_input_each_get_their_own_rows_and_the_input_is_unchanged(vocab):
    heads = {"a": TextReadingHead(vocab), "b": TextReadingHead(vocab)}
    model = MultiTaskModel(vocab, backbone(vocab), heads)
    inputs = batch(["b", "a", "b", "a", "a"])
    tokens = inputs["text"]["tokens"]["tokens"]
    original = tokens.clone()
    model(**inputs)
    assert inputs["text"]["tokens"]["tokens"] is tokens and torch.equal(tokens, original)
    assert heads["a"].calls[0]["text"]["tokens"]["tokens"].tolist() == original[[1, 3, 4]].tolist()
    assert heads["b"].calls[0]["text"]["tokens"]["tokens"].tolist() == original[[0, 2]].tolist()
    assert heads["a"].calls[0]["label"].tolist() == [1, 1, 0]


def test_allennlps_class_corrupts_inputs_shared_by_heads(vocab):
    """The bug the test above guards against, shown on AllenNLP's own class."""
    heads = {"a": TextReadingHead(vocab), "b": TextReadingHead(vocab)}
    model = AllenNlpMultiTaskModel(vocab, backbone(vocab), heads)
    inputs = batch(["b", "a", "b", "a", "a"])
    original = inputs["text"]["tokens"]["tokens"].clone()
    model(**inputs)
    # Head "a" slices the caller's dict in place to rows 1, 3, 4; head "b" then takes "rows 0 and 2"
    # of that, i.e. the original rows 1 and 4, and leaves them in the caller's dict.
    assert inputs["text"]["tokens"]["tokens"].tolist() == original[[1, 4]].tolist()


def test_homogeneous_batch_reaches_its_head_without_copies(vocab):
    heads = {"a": TextReadingHead(vocab), "b": TextReadingHead(vocab)}
    model = MultiTaskModel(vocab, backbone(vocab), heads)
    inputs = batch(["a", "a", "a"])
    outputs = model(**inputs)
    call = heads["a"].calls[0]
    assert call["text"] is inputs["text"] and call["label"] is inputs["label"]
    assert call["encoded_text"] is outputs["encoded_text"]
    assert heads["b"].calls == []


class KeyRecordingClassifier(ClassifierHead):
    def make_output_human_readable(self, output_dict: Dict[str, Any]) -> Dict[str, Any]:
        self.seen_keys = sorted(output_dict)
        return super().make_output_human_readable(output_dict)


def test_mixed_batch_gradients_equal_each_head_run_on_its_own_rows(vocab):
    # Heads a and b gather scattered rows (and share the rows of task "ab"); head c's rows are contiguous.
    heads = {name: classifier(vocab) for name in "abc"}
    model = MultiTaskModel(vocab, backbone(vocab), heads, task_heads={"ab": ["a", "b"]})
    reference = copy.deepcopy(model)
    tasks = ["a", "ab", "c", "c", "a", "ab"]
    model(**batch(tasks))["loss"].backward()

    inputs = batch(tasks)
    encoded = reference._backbone(text=inputs["text"])
    loss = torch.tensor(0.0)
    for head, rows in {"a": [0, 1, 4, 5], "b": [1, 5], "c": [2, 3]}.items():
        index = torch.tensor(rows)
        arguments = {name: value[index] for name, value in encoded.items() if name.startswith("encoded_text")}
        loss = loss + reference._heads[head](**arguments, label=inputs["label"][index])["loss"]
    loss.backward()
    for (name, parameter), expected in zip(model.named_parameters(), reference.parameters()):
        assert parameter.grad is not None and torch.allclose(parameter.grad, expected.grad, atol=1e-6), name


@pytest.mark.parametrize("model_class", [MultiTaskModel, AllenNlpMultiTaskModel])
def test_human_readable_output_is_matched_on_the_exact_head_prefix(vocab, model_class):
    encoder = BagOfEmbeddingsEncoder(DIM, averaged=True)
    heads = {name: KeyRecordingClassifier(vocab, encoder) for name in ["cls", "cls_extra"]}
    model = model_class(vocab, backbone(vocab), heads)
    readable = model.make_output_human_readable(model(**batch(["cls", "cls_extra", "cls_extra"])))
    if model_class is AllenNlpMultiTaskModel:  # The bug: "cls" also sees "cls_extra"'s outputs.
        assert "extra_probs" in heads["cls"].seen_keys
        return
    assert heads["cls"].seen_keys == heads["cls_extra"].seen_keys == ["logits", "loss", "probs"]
    assert len(readable["cls_label"]) == 1 and len(readable["cls_extra_label"]) == 2


def test_partial_loss_weights_weigh_the_other_heads_one(vocab):
    heads = {"a": classifier(vocab), "b": classifier(vocab)}
    model = MultiTaskModel(vocab, backbone(vocab), heads, loss_weights={"a": 3.0})
    outputs = model(**batch(["a", "b", "b"]))
    assert torch.allclose(outputs["loss"], 3.0 * outputs["a_loss"] + outputs["b_loss"])
    with pytest.raises(KeyError):  # AllenNLP's class, for contrast.
        AllenNlpMultiTaskModel(vocab, backbone(vocab), heads, loss_weights={"a": 3.0})(**batch(["b"]))


def test_forward_kwargs_component_receives_every_available_argument(vocab):
    head = KwargsHead(vocab)
    model = MultiTaskModel(vocab, backbone(vocab), {"a": head, "b": classifier(vocab)})
    model(**batch(["a", "b", "a"]))
    assert set(head.received) == {"encoded_text", "encoded_text_mask", "text", "label", "task"}
    assert head.received["task"] == ["a", "a"]


def test_model_pickles_deep_copies_and_torch_saves(vocab):
    model = MultiTaskModel(vocab, backbone(vocab), {"a": classifier(vocab), "b": classifier(vocab)})
    model.eval()
    inputs = batch(["a", "b", "b"])
    expected = model(**inputs)["loss"]
    single_task = model(**batch(["b", "b"]))["loss"]  # Its routing is kept for the next such batch.
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    copies = [pickle.loads(pickle.dumps(model)), copy.deepcopy(model), torch.load(buffer, weights_only=False)]
    for clone in copies:
        assert torch.equal(clone(**inputs)["loss"], expected)
        assert torch.equal(clone(**batch(["b", "b"]))["loss"], single_task)


UNCERTAINTY_WEIGHT = math.exp(-0.5)


@pytest.mark.parametrize(
    "options, weigh",
    [
        ({"loss_weights": {"a": 3.0}}, lambda head, loss: 3.0 * loss if head == "a" else loss),
        (
            {"loss_weighting": Lazy(UncertaintyLossWeighting, Params({"initial_log_variance": 0.5}))},
            lambda head, loss: UNCERTAINTY_WEIGHT * loss + 0.5,
        ),
        ({"loss_weighting": Lazy(DynamicWeightAverage)}, lambda head, loss: loss),
    ],
    ids=["static", "uncertainty", "dwa"],
)
def test_loss_terms_are_the_weighted_head_losses_that_add_up_to_the_loss(vocab, options, weigh):
    heads = {name: classifier(vocab) for name in "abc"}
    model = MultiTaskModel(vocab, backbone(vocab), heads, task_heads={"ab": ["a", "b"]}, **options)
    outputs = model(**batch(["b", "ab", "b"]))
    running_state = [tensor.clone() for tensor in model._loss_weighting.running_state()]

    terms = model.loss_terms(outputs)

    assert list(terms) == ["a", "b"]  # the heads with a loss, in the model's order
    for head, term in terms.items():
        assert torch.allclose(term, weigh(head, outputs[f"{head}_loss"])), head
    assert torch.allclose(terms["a"] + terms["b"], outputs["loss"])
    assert all(torch.equal(a, b) for a, b in zip(model._loss_weighting.running_state(), running_state))
    assert set(model.backbone_outputs(outputs)) == {"encoded_text", "encoded_text_mask"}


def test_a_tracked_metric_is_reported_and_reset_with_the_heads_metrics(vocab):
    model = MultiTaskModel(vocab, backbone(vocab), {"a": classifier(vocab), "b": classifier(vocab)})
    conflicts = GradientConflicts()
    model.track_metric(conflicts)
    model(**batch(["a", "b"]))
    conflicts(torch.tensor([[1.0, -1.0], [-1.0, 4.0]]))

    assert model.get_metrics()["gradient_conflict_share"] == 1.0
    assert model.get_metrics(reset=True)["gradient_cosine_mean"] == -0.5
    assert "gradient_conflict_share" not in model.get_metrics()
    conflicts(torch.eye(2))
    model.untrack_metric(conflicts)
    assert "gradient_conflict_share" not in model.get_metrics()


def test_recorded_head_inputs_are_given_once_and_then_let_go(vocab):
    model = MultiTaskModel(vocab, backbone(vocab), {"a": classifier(vocab), "b": classifier(vocab)})
    model.record_head_inputs(True)
    model(**batch(["a", "b", "a"]))

    taken = model.take_head_inputs()

    assert {head: [(read.output, read.rows) for read in inputs] for head, inputs in taken.items()} == {
        "a": [("encoded_text", [0, 2])],
        "b": [("encoded_text", [1])],
    }
    assert model.take_head_inputs() == {}  # The model keeps none of the views (nor the rows they view).
    model.record_head_inputs(False)
    with pytest.raises(RuntimeError, match=r"needs record_head_inputs\(True\)"):
        model.take_head_inputs()
