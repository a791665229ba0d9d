"""
Every configuration or batch mistake gives one clear error naming the piece at fault, and a forward
pass that fails leaves the model's metrics (and its loss weighting's running sums) as they were.
"""

import copy
import re
from typing import Any, Callable, Dict

import pytest
import torch
from allennlp.common import Lazy, Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.data.data_loaders import SimpleDataLoader
from allennlp.models import Model

from allennlp_multitask import MultiTaskModel
from allennlp_multitask.models import DynamicWeightAverage
from allennlp_multitask.training import GradientDescentTrainer
from tests.models.recording_modules import LENGTH, RecordingBackbone, RecordingHead, make_batch
from tests.models.small_model import backbone, batch, classifier, small_vocab

HEADS = re.escape("['sentiment', 'topic']")
COMPONENTS = re.escape("['backbone', 'sentiment', 'topic']")


def model_config(**keys: Any) -> Dict[str, Any]:
    """A two-head model configuration as `allennlp train` reads it, with `keys` added."""

    def classifier() -> Dict[str, Any]:
        return {"type": "classifier", "seq2vec_encoder": {"type": "boe", "embedding_dim": 4}, "num_labels": 2}

    embedding = {"type": "embedding", "embedding_dim": 4, "num_embeddings": 10}
    return {
        "type": "multitask",
        "backbone": {"type": "embedder", "text_field_embedder": {"token_embedders": {"tokens": embedding}}},
        "heads": {"sentiment": classifier(), "topic": classifier()},
        **keys,
    }


@pytest.mark.parametrize(
    "keys, message",
    [
        pytest.param(
            {"loss_weigths": {"sentiment": 2.0}},
            r"no key\(s\) \['loss_weigths'\]; its keys: \[.*\]\. Did you mean 'loss_weights'",
            id="misspelled model key",
        ),
        pytest.param(
            {"loss_weights": {"sentimnt": 2.0}},
            rf"\['sentimnt'\], which are not heads; heads: {HEADS}",
            id="loss_weights",
        ),
        pytest.param(
            {"arg_name_mapping": {"backbon": {"sentence": "text"}}},
            rf"arg_name_mapping names \['backbon'\], which are not components; components: {COMPONENTS}",
            id="arg_name_mapping",
        ),
        pytest.param(
            {"allowed_arguments": {"topc": ["encoded_text"]}},
            rf"allowed_arguments names \['topc'\], which are not components; components: {COMPONENTS}",
            id="allowed_arguments",
        ),
        pytest.param(
            {"task_heads": {"reviews": ["sentiment", "sentimnt"]}},
            rf"task_heads\['reviews'\] names \['sentimnt'\], which are not heads; heads: {HEADS}",
            id="task_heads",
        ),
        pytest.param(
            {"task_heads": {"reviews": "sentiment"}},
            r"task_heads\['reviews'\] names .* A string where a list belongs\? Write \[\"sentiment\"\]",
            id="task_heads string",
        ),
        pytest.param(
            {"active_heads": ["topik"]},
            rf"active_heads names \['topik'\], which are not heads; heads: {HEADS}",
            id="active_heads",
        ),
        pytest.param(
            {"loss_weighting": {"type": "dwa", "temprature": 1.0}},
            r"Extra parameters passed to DynamicWeightAverage: \{'temprature': 1.0\}",
            id="misspelled loss_weighting key",
        ),
    ],
)
def test_configuration_mistakes_fail_at_construction_naming_the_key(keys, message):
    with pytest.raises(ConfigurationError, match=message):
        Model.from_params(vocab=Vocabulary(), params=Params(model_config(**keys)))


def test_the_configuration_without_mistakes_builds():
    model = Model.from_params(vocab=Vocabulary(), params=Params(model_config(loss_weights={"topic": 2.0})))
    assert isinstance(model, MultiTaskModel)


def build_model(**options: Any) -> MultiTaskModel:
    """Heads "first" and "second", which run in that order."""
    vocab = Vocabulary()
    heads = {"first": RecordingHead(vocab), "second": RecordingHead(vocab)}
    return MultiTaskModel(vocab, RecordingBackbone(), heads, **options)


def without(batch: Dict[str, Any], key: str) -> Dict[str, Any]:
    return {name: value for name, value in batch.items() if name != key}


def second_head_returns(loss: str) -> Callable[[MultiTaskModel], None]:
    return lambda model: setattr(model._heads["second"], "loss", loss)


def make_backbone_time_major(model: MultiTaskModel) -> None:
    model._backbone.time_major = True


def no_change(model: MultiTaskModel) -> None:
    pass


EMPTY_BATCH = {"tokens": torch.zeros((0, LENGTH), dtype=torch.long), "task": []}
BOTH_TASKS = ["first", "second", "first"]

# (model options, what goes wrong in the model after a first good batch, the bad batch, the error).
FORWARD_MISTAKES = [
    pytest.param(
        {},
        no_change,
        without(make_batch(["first"]), "task"),
        r"MetadataField named 'task'.*only \['features', 'label', 'metadata', 'tokens'\]",
        id="missing task field",
    ),
    pytest.param(
        {},
        no_change,
        make_batch(["first", "thrid"]),
        r"task\(s\) \['thrid'\] that no head serves; known tasks: \['first', 'second'\]",
        id="unknown task",
    ),
    pytest.param(
        {},
        no_change,
        without(make_batch(BOTH_TASKS), "metadata"),
        r"Component 'first' needs argument\(s\) \['metadata'\], but the batch offers only "
        r"\['encoded', 'features', 'label', 'task', 'tokens'\] after arg_name_mapping",
        id="missing required argument",
    ),
    pytest.param(
        {"arg_name_mapping": {"second": {"gold": "label"}}},
        no_change,
        {**make_batch(BOTH_TASKS), "gold": make_batch(BOTH_TASKS)["label"]},
        # AllenNLP's own test matches "duplicate argument {name}"; code matching it keeps working.
        r"'second' got duplicate argument label: two inputs, 'label' and 'gold', map onto it",
        id="duplicate mapped argument",
    ),
    pytest.param(
        {},
        second_head_returns("per_row"),
        make_batch(BOTH_TASKS),
        r"Head 'second' returned a loss of shape \(1,\); a loss must be a scalar tensor",
        id="non-scalar loss",
    ),
    pytest.param(
        {},
        second_head_returns("nan"),
        make_batch(BOTH_TASKS),
        r"Head\(s\) \['second'\] returned a non-finite loss",
        id="NaN loss",
    ),
    pytest.param({}, no_change, EMPTY_BATCH, r"empty batch", id="empty batch"),
    pytest.param(
        {},
        make_backbone_time_major,
        make_batch(BOTH_TASKS),
        rf"Backbone output 'encoded' has shape \({LENGTH}, 3, 3\), but outputs must be batch-first",
        id="backbone output not batch-first",
    ),
]


def metric_state(model: MultiTaskModel) -> Dict[str, Any]:
    """What the model reports, and the counts behind each head's accuracy."""
    counts = {name: (head.accuracy.correct_count, head.accuracy.total_count) for name, head in model._heads.items()}
    return {"reported": model.get_metrics(), "counts": counts}


@pytest.mark.parametrize("options, go_wrong, batch, message", FORWARD_MISTAKES)
def test_batch_mistakes_name_the_piece_at_fault_and_leave_metrics_as_they_were(options, go_wrong, batch, message):
    model = build_model(**options)
    model(**make_batch(["first", "second"], variant=1))
    go_wrong(model)
    before = metric_state(model)
    untouched = copy.deepcopy(batch)
    with pytest.raises(ValueError, match=message):
        model(**batch)
    assert metric_state(model) == before
    assert repr(batch) == repr(untouched)


def test_a_missing_argument_is_reported_with_the_inputs_as_renamed_by_arg_name_mapping():
    model = build_model(arg_name_mapping={"first": {"metadata": "meta"}})  # The wrong way round.
    with pytest.raises(
        ValueError,
        match=r"Component 'first' needs argument\(s\) \['metadata'\], but the batch offers only "
        r"\['encoded', 'features', 'label', 'meta', 'task', 'tokens'\] after arg_name_mapping",
    ):
        model(**make_batch(["first"]))


def test_a_failed_forward_puts_back_the_loss_weightings_running_sums():
    model = build_model(loss_weighting=Lazy(DynamicWeightAverage))
    model(**make_batch(["first", "second"]))
    second_head_returns("nan")(model)
    before = [tensor.tolist() for tensor in model._loss_weighting.running_state()]
    with pytest.raises(ValueError, match=r"\['second'\] returned a non-finite loss"):
        model(**make_batch(BOTH_TASKS))
    assert [tensor.tolist() for tensor in model._loss_weighting.running_state()] == before
    assert before[1] == [1.0, 1.0]  # One batch of each head counted: there were sums to keep.


def test_rollback_follows_the_model_into_copies():
    """The model finds its heads' metrics once; a deep copy's rollback must restore the copy's own metrics."""
    model = copy.deepcopy(build_model())
    model(**make_batch(["first", "second"]))
    second_head_returns("nan")(model)
    before = metric_state(model)
    with pytest.raises(ValueError, match="non-finite loss"):
        model(**make_batch(BOTH_TASKS))
    assert metric_state(model) == before


def test_forward_without_labels_returns_the_outputs_without_a_loss_in_any_mode():
    # As AllenNLP's model does: code that calls the model in training mode for its outputs (Monte-Carlo
    # dropout, a custom loop) relies on it.
    vocab = small_vocab()
    model = MultiTaskModel(vocab, backbone(vocab), {"sentiment": classifier(vocab), "topic": classifier(vocab)})
    unlabelled = without(batch(["sentiment", "sentiment"]), "label")
    for training, grad in [(True, True), (True, False), (False, True), (False, False)]:
        model.train(training)
        with torch.set_grad_enabled(grad):
            outputs = model(**unlabelled)
        assert "sentiment_probs" in outputs and "loss" not in outputs


def test_a_training_batch_without_labels_fails_in_the_trainer_naming_its_tasks_and_what_the_heads_got():
    # E.g. a reader whose label_key matches no key of the data; AllenNLP's trainer would only say that
    # the outputs have no "loss" key.
    vocab = small_vocab()
    model = MultiTaskModel(vocab, backbone(vocab), {"sentiment": classifier(vocab), "topic": classifier(vocab)})
    trainer = GradientDescentTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1), SimpleDataLoader([], 1))
    unlabelled = without(batch(["sentiment", "sentiment"]), "label")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "No head computed a loss on a training batch of task(s) ['sentiment']; the heads got only these "
            "arguments (after arg_name_mapping): {'sentiment': ['encoded_text', 'encoded_text_mask']}."
        ),
    ):
        trainer.batch_outputs(unlabelled, for_training=True)
    assert "loss" not in trainer.batch_outputs(unlabelled, for_training=False)


class NoCopy:
    """Part of a metric's state that says so if anything copies it."""

    def __deepcopy__(self, memo: Dict[int, Any]) -> "NoCopy":
        raise AssertionError("the metric's state was copied")

    __copy__ = __deepcopy__  # type: ignore[assignment]


def test_a_forward_pass_copies_no_metric_state_and_a_failed_one_still_leaves_metrics_as_they_were():
    # Copying every metric's state at each forward pass costs a few microseconds per metric: a
    # successful pass instead holds back the metrics' updates until everything passed, then makes them.
    model = build_model()
    for head in model._heads.values():
        head.accuracy.origin = NoCopy()
    model(**make_batch(["first", "second"], variant=1))
    model(**make_batch(BOTH_TASKS))
    before = metric_state(model)
    assert before["counts"]["first"][1] > 0
    second_head_returns("nan")(model)
    with pytest.raises(ValueError, match="non-finite loss"):
        model(**make_batch(BOTH_TASKS))
    assert metric_state(model) == before
    assert type(model._heads["first"].accuracy).__name__ == "CategoricalAccuracy"
