from typing import Dict, Optional

import pytest
import torch
from allennlp.models.multitask import get_forward_arguments as allennlp_get_forward_arguments

from allennlp_multitask.models.routing import (
    ArgumentRouter,
    HeadRows,
    accepts_any_argument,
    get_forward_arguments,
    get_required_arguments,
    route_tasks,
)


class Fixed(torch.nn.Module):
    def forward(self, text: Dict, label: Optional[torch.Tensor] = None, *, mask: torch.Tensor) -> Dict:
        return {}


class Open(torch.nn.Module):
    def forward(self, text: Dict, **kwargs) -> Dict:
        return {}


def test_signature_helpers():
    assert get_forward_arguments(Fixed()) == allennlp_get_forward_arguments(Fixed()) == {"text", "label", "mask"}
    assert get_required_arguments(Fixed()) == {"text", "mask"}
    assert get_required_arguments(Open()) == {"text"}
    assert not accepts_any_argument(Fixed())
    assert accepts_any_argument(Open())


def test_router_renames_filters_and_leaves_input_alone():
    router = ArgumentRouter("sentiment", {"label", "encoded_text"}, {"encoded_text"}, {"sentiment": "label"})
    available = {"encoded_text": 1, "sentiment": 2, "question": 3}
    assert router.select(available) == {"encoded_text": 1, "label": 2}
    assert available == {"encoded_text": 1, "sentiment": 2, "question": 3}


def test_router_plan_is_checked_once_per_key_sequence_and_raises_like_select():
    router = ArgumentRouter("sentiment", {"label", "encoded_text"}, {"encoded_text"}, {"sentiment": "label"})
    plan = router.plan(("encoded_text", "sentiment", "question"))
    assert plan == [("encoded_text", "encoded_text"), ("sentiment", "label")]
    assert router.plan(("encoded_text", "sentiment", "question")) is plan
    assert router.plan(("sentiment", "encoded_text")) == [("sentiment", "label"), ("encoded_text", "encoded_text")]
    with pytest.raises(ValueError, match=r"'sentiment' needs argument\(s\) \['encoded_text'\]"):
        router.plan(("sentiment",))


def test_router_without_allowed_set_passes_everything():
    router = ArgumentRouter("open", None, set(), {"a": "b"})
    assert router.select({"a": 1, "c": 2}) == {"b": 1, "c": 2}


def test_router_names_both_sources_of_a_duplicate_in_allennlps_words_too():
    router = ArgumentRouter("backbone", {"text"}, {"text"}, {"question": "text", "sentence": "text"})
    # AllenNLP's tests/models/multitask_test.py::test_forward_works matches "duplicate argument text".
    with pytest.raises(ValueError, match="duplicate argument text"):
        router.select({"question": 1, "sentence": 2})
    with pytest.raises(ValueError, match=r"'backbone' got duplicate argument text: two inputs, 'question' and 'sent"):
        router.select({"question": 1, "sentence": 2})


def test_router_names_missing_argument_and_what_was_available():
    router = ArgumentRouter("topic", {"encoded_text", "label"}, {"encoded_text"}, {"topic": "label"})
    with pytest.raises(ValueError, match=r"'topic' needs argument\(s\) \['encoded_text'\].*\['label', 'text'\]"):
        router.select({"topic": 1, "text": 2})


def test_route_tasks_keeps_batch_order_and_head_order():
    task_heads = {"a": ["a"], "b": ["b"], "conll": ["pos", "ner"]}
    rows = route_tasks(["b", "conll", "a", "b", "conll"], task_heads, ["a", "b", "pos", "ner"])
    assert list(rows) == ["a", "b", "pos", "ner"]
    assert rows == {"a": [2], "b": [0, 3], "pos": [1, 4], "ner": [1, 4]}


def test_route_tasks_merges_tasks_sharing_a_head_in_row_order():
    rows = route_tasks(["x", "y", "x"], {"x": ["shared"], "y": ["shared"]}, ["shared"])
    assert rows == {"shared": [0, 1, 2]}


def test_route_tasks_skips_inactive_heads_and_rejects_unknown_tasks():
    assert route_tasks(["a", "b"], {"a": ["a"], "b": ["b"]}, ["b"]) == {"b": [1]}
    with pytest.raises(ValueError, match=r"\['c'\] that no head serves; known tasks: \['a', 'b'\]"):
        route_tasks(["a", "c"], {"a": ["a"], "b": ["b"]}, ["a", "b"])


def test_whole_batch_heads_get_the_inputs_themselves():
    value = {"tokens": {"tokens": torch.arange(6).view(3, 2)}}
    head_rows = HeadRows({"a": [0, 1, 2], "b": [0, 1, 2]}, 3)
    assert head_rows.split(value, ["a", "b"]) == {"a": value, "b": value}
    assert head_rows.split(value, ["b"])["b"] is value


def test_contiguous_rows_are_a_view_and_scattered_rows_share_one_gather():
    tensor = torch.arange(12).view(6, 2)
    parts = HeadRows({"view": [1, 2], "x": [0, 3], "y": [4, 5], "z": [0, 5]}, 6).split(tensor, ["view", "x", "y", "z"])
    assert {head: part.tolist() for head, part in parts.items()} == {
        "view": [[2, 3], [4, 5]],
        "x": [[0, 1], [6, 7]],
        "y": [[8, 9], [10, 11]],
        "z": [[0, 1], [10, 11]],
    }
    assert parts["view"].data_ptr() == tensor[1].data_ptr()
    assert parts["y"].data_ptr() == tensor[4].data_ptr()
    # x and z (scattered rows) are parts of one gathered tensor.
    gathered = parts["x"].untyped_storage()
    assert gathered.data_ptr() != tensor.untyped_storage().data_ptr()
    assert parts["z"].untyped_storage().data_ptr() == gathered.data_ptr() and gathered.nbytes() == 4 * 2 * 8


def test_split_gives_only_the_heads_asked_for_and_keeps_their_order():
    head_rows = HeadRows({"a": [0, 2], "b": [1], "c": [0, 1, 2]}, 3)
    assert head_rows.heads == ["a", "b", "c"]
    parts = head_rows.split(torch.tensor([10, 11, 12]), ["c", "b"])
    assert list(parts) == ["c", "b"]
    assert parts["b"].tolist() == [11]
    assert HeadRows({"none": [], "a": [0, 2]}, 3).split(torch.tensor([10, 11, 12]), ["none", "a"])["none"].numel() == 0


def test_gradients_reach_every_head_s_rows_through_the_shared_gather():
    encoded = torch.arange(5.0, requires_grad=True)
    parts = HeadRows({"a": [0, 3], "b": [1, 3, 4], "c": [2]}, 5).split(encoded, ["a", "b", "c"])
    (parts["a"].sum() + 10 * parts["b"].sum() + 100 * parts["c"].sum()).backward()
    assert encoded.grad.tolist() == [1.0, 10.0, 100.0, 11.0, 10.0]


def test_nested_containers_are_cut_at_any_depth_without_touching_the_original():
    batch = {
        "text": {"tokens": {"tokens": torch.arange(3), "mask": torch.tensor([True, False, True])}},
        "layers": [torch.arange(6).view(3, 2), (torch.arange(3) * 10,)],
        "metadata": [{"id": 0}, {"id": 1}, {"id": 2}],
        "task": ("a", "b", "a"),
        "scalar": torch.tensor(7.0),
        "other_shape": torch.zeros(5, 2),
        "name": "keep",
        "empty": {},
    }
    before = {key: repr(value) for key, value in batch.items()}
    parts = HeadRows({"a": [0, 2], "b": [1]}, 3).split(batch, ["a", "b"])
    sliced = parts["a"]
    assert sliced["text"]["tokens"]["tokens"].tolist() == [0, 2]
    assert sliced["text"]["tokens"]["mask"].tolist() == [True, True]
    assert sliced["layers"][0].tolist() == [[0, 1], [4, 5]]
    assert isinstance(sliced["layers"][1], tuple) and sliced["layers"][1][0].tolist() == [0, 20]
    assert sliced["metadata"] == [{"id": 0}, {"id": 2}]
    assert sliced["task"] == ("a", "a")
    assert sliced["scalar"] is batch["scalar"]
    assert sliced["other_shape"] is batch["other_shape"]
    assert sliced["name"] == "keep"
    assert sliced["empty"] == {} and sliced["empty"] is not parts["b"]["empty"]
    assert parts["b"]["metadata"] == [{"id": 1}] and parts["b"]["task"] == ("b",)
    assert {key: repr(value) for key, value in batch.items()} == before
