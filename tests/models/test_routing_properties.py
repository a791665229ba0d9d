"""
Property tests of the plumbing: random heads, tasks, task-to-heads maps, active heads, loss weights,
argument renamings and mixed batches of nested inputs. In every case each head gets exactly its
instances' rows, in batch order, the caller's inputs are left as they were, and the loss is the weighted
sum of what each head computes on a batch of only its own instances.
"""

import copy
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest
import torch
from allennlp.data import Vocabulary
from hypothesis import given, settings
from hypothesis import strategies as st

from allennlp_multitask import MultiTaskModel
from allennlp_multitask.models.routing import ArgumentRouter, HeadRows, route_tasks
from tests.models.recording_modules import (
    RecordingBackbone,
    RecordingHead,
    assert_nested_equal,
    collate,
    make_batch,
    make_instance,
)

HEAD_NAMES = ["h0", "h1", "h2", "h3"]
HEAD_ARGUMENTS = ["features", "metadata", "label"]
EXAMPLES = settings(max_examples=60, deadline=None)


@dataclass
class RoutingCase:
    heads: List[str]
    task_heads: Optional[Dict[str, List[str]]]
    tasks: List[str]
    active_heads: Optional[List[str]]
    loss_weights: Dict[str, float]
    renamed: Set[str]  # Inputs given under another name, renamed by arg_name_mapping.

    def heads_of(self, task: str) -> List[str]:
        return (self.task_heads or {}).get(task, [task])

    def rows_of(self, head: str) -> List[int]:
        if self.active_heads is not None and head not in self.active_heads:
            return []
        return [row for row, task in enumerate(self.tasks) if head in self.heads_of(task)]


@st.composite
def routing_cases(draw: st.DrawFn) -> RoutingCase:
    heads = HEAD_NAMES[: draw(st.integers(1, len(HEAD_NAMES)))]
    # Tasks named after a head go to that head unless task_heads says otherwise; others need task_heads.
    task_names = draw(st.lists(st.sampled_from([*heads, "t0", "t1"]), min_size=1, max_size=4, unique=True))
    task_heads = {}
    for task in task_names:
        if task not in heads or draw(st.booleans()):
            task_heads[task] = draw(st.lists(st.sampled_from(heads), min_size=1, max_size=4))
    return RoutingCase(
        heads=heads,
        task_heads=task_heads or None,
        tasks=draw(st.lists(st.sampled_from(task_names), min_size=1, max_size=10)),
        active_heads=draw(st.none() | st.lists(st.sampled_from(heads), min_size=1, unique=True)),
        loss_weights=draw(st.dictionaries(st.sampled_from(heads), st.floats(0.1, 3.0))),
        renamed=draw(st.sets(st.sampled_from(["tokens", *HEAD_ARGUMENTS]))),
    )


def variant_of(case: RoutingCase, argument: str, head_index: int) -> int:
    """Renamed inputs come in one copy per head (variant 1 + its index); others in one copy (variant 0)."""
    return 1 + head_index if argument in case.renamed else 0


def build(case: RoutingCase) -> Tuple[MultiTaskModel, Dict[str, Any]]:
    """The model of `case`, and its batch: renamed inputs appear as `words` and `{argument}_{head}`."""
    mapping: Dict[str, Dict[str, str]] = {"backbone": {"words": "tokens"}} if "tokens" in case.renamed else {}
    batch = make_batch(case.tasks)
    if "tokens" in case.renamed:
        batch["words"] = batch.pop("tokens")
    for argument in HEAD_ARGUMENTS:
        if argument in case.renamed:
            del batch[argument]
            for index, head in enumerate(case.heads):
                batch[f"{argument}_{head}"] = make_batch(case.tasks, variant_of(case, argument, index))[argument]
                mapping.setdefault(head, {})[f"{argument}_{head}"] = argument
    vocab = Vocabulary()
    model = MultiTaskModel(
        vocab,
        RecordingBackbone(),
        {head: RecordingHead(vocab) for head in case.heads},
        loss_weights=case.loss_weights,
        arg_name_mapping=mapping,
        task_heads=case.task_heads,
        active_heads=case.active_heads,
    )
    return model, batch


def own_inputs(case: RoutingCase, model: MultiTaskModel, head: str) -> Dict[str, Any]:
    """What `head` should get: its arguments from a batch of only its instances, encoded on their own."""
    index = case.heads.index(head)

    def own_batch(variant: int) -> Dict[str, Any]:
        return collate([make_instance(row, case.tasks[row], variant) for row in case.rows_of(head)])

    inputs = {argument: own_batch(variant_of(case, argument, index))[argument] for argument in HEAD_ARGUMENTS}
    tokens = own_batch(0)["tokens"]
    with torch.no_grad():
        inputs["encoded"] = model._backbone(tokens=tokens)["encoded"]
    return inputs


@EXAMPLES
@given(routing_cases())
def test_every_head_gets_its_rows_inputs_stay_intact_and_loss_is_the_weighted_sum(case):
    model, batch = build(case)
    untouched = copy.deepcopy(batch)
    with torch.no_grad():
        outputs = model(**batch)
    assert_nested_equal(batch, untouched)
    assert model._backbone.calls[0]["tokens"] is batch["words" if "tokens" in case.renamed else "tokens"]

    expected_loss = torch.tensor(0.0)
    for head in case.heads:
        recorded = model._heads[head].calls
        if not case.rows_of(head):
            assert recorded == [] and f"{head}_logits" not in outputs
            continue
        assert len(recorded) == 1
        expected = own_inputs(case, model, head)
        assert_nested_equal(recorded[0], {key: expected[key] for key in recorded[0]})
        with torch.no_grad():
            alone = model._heads[head](**expected)
        assert torch.equal(outputs[f"{head}_logits"], alone["logits"])
        expected_loss = expected_loss + case.loss_weights.get(head, 1.0) * alone["loss"]
    if any(case.rows_of(head) for head in case.heads):
        assert torch.allclose(outputs["loss"], expected_loss)
    else:
        assert "loss" not in outputs


@EXAMPLES
@given(routing_cases())
def test_route_tasks_gives_each_active_head_its_rows_in_batch_order(case):
    task_heads = {**{head: [head] for head in case.heads}, **(case.task_heads or {})}
    active = case.active_heads or case.heads
    routed = route_tasks(case.tasks, task_heads, active)
    assert routed == {head: case.rows_of(head) for head in active if case.rows_of(head)}
    assert list(routed) == [head for head in active if head in routed]


@EXAMPLES
@given(st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=8), st.data())
def test_route_tasks_names_the_unknown_task_and_the_known_ones(tasks, data):
    unknown = data.draw(st.sampled_from(["x", "y"]))
    position = data.draw(st.integers(0, len(tasks)))
    tasks = [*tasks[:position], unknown, *tasks[position:]]
    with pytest.raises(ValueError, match=rf"\['{unknown}'\] that no head serves; known tasks: \['a', 'b'\]"):
        route_tasks(tasks, {"a": ["a"], "b": ["b"]}, ["a", "b"])


@EXAMPLES
@given(st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=10), st.data())
def test_each_head_s_part_equals_a_batch_of_its_instances(tasks, data):
    rows_strategy = st.sets(st.integers(0, len(tasks) - 1), min_size=1).map(sorted)
    rows_of_heads = data.draw(st.dictionaries(st.sampled_from(HEAD_NAMES), rows_strategy, min_size=1))
    batch = make_batch(tasks)
    untouched = copy.deepcopy(batch)
    parts = HeadRows(rows_of_heads, len(tasks)).split(batch, list(rows_of_heads))
    assert list(parts) == list(rows_of_heads)
    for head, rows in rows_of_heads.items():
        assert_nested_equal(parts[head], collate([make_instance(row, tasks[row]) for row in rows]))
    assert_nested_equal(batch, untouched)


@EXAMPLES
@given(
    available=st.lists(st.sampled_from("abcdef"), unique=True),
    mapping=st.dictionaries(st.sampled_from("abcdef"), st.sampled_from("abcxyz")),
    allowed=st.none() | st.sets(st.sampled_from("abcdefxyz")),
    required=st.sets(st.sampled_from("abcxyz"), max_size=2),
)
def test_argument_router_keeps_each_allowed_input_once_under_its_mapped_name(available, mapping, allowed, required):
    values = {key: object() for key in available}
    source: Dict[str, str] = {}  # The input each kept name comes from.
    duplicate = None  # The first two inputs, in batch order, that land on one name.
    for key in available:
        name = mapping.get(key, key)
        if allowed is None or name in allowed:
            if name in source and duplicate is None:
                duplicate = (source[name], key)
            source.setdefault(name, key)
    router = ArgumentRouter("component", allowed, required, mapping)
    if duplicate:
        with pytest.raises(ValueError, match=rf"'component'.*'{duplicate[0]}' and '{duplicate[1]}'"):
            router.select(values)
    elif required - source.keys():
        missing = sorted(required - source.keys())
        with pytest.raises(ValueError, match=re.escape(f"'component' needs argument(s) {missing}")):
            router.select(values)
    else:
        selected = router.select(values)
        assert selected.keys() == source.keys()
        assert all(selected[name] is values[key] for name, key in source.items())
    assert list(values) == available
