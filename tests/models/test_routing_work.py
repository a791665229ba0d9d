"""
The work routing does, counted op by op: every ATen op the model runs itself (outside its backbone and
heads) on the batch's data. A homogeneous batch needs none, a mixed batch one gather per input
whatever the number of heads, or only views when heads' rows are contiguous. Counts are deterministic,
unlike timings (those are in benchmarks/routing_overhead.py).
"""

from collections import Counter
from typing import Any, Dict, List

import pytest
import torch
from allennlp.models import MultiTaskModel as AllenNlpMultiTaskModel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from allennlp_multitask import MultiTaskModel
from allennlp_multitask.models.state_snapshot import HeldBackUpdates
from tests.models.small_model import backbone, batch, classifier

HEAD_INPUTS = 3  # A classifier head takes encoded_text, encoded_text_mask and label.


class RowOpCounter(TorchDispatchMode):
    """
    Counts, by name, the ATen ops that `model` runs outside its backbone and heads on the batch's data:
    on a tensor of `inputs` or of the backbone's outputs, or on a view of one. The heads' metric updates,
    which the model makes once every head ran (`HeldBackUpdates.release`), are the heads' work.
    """

    def __init__(self, model: torch.nn.Module, inputs: Dict[str, Any]) -> None:
        super().__init__()
        self.counts: Counter = Counter()
        self._batch_storages = {_storage_of(tensor) for tensor in _tensors_in(inputs)}
        self._inside_components = 0
        self._hooks = [model._backbone.register_forward_hook(self._add_backbone_outputs)]
        for component in [model._backbone, *model._heads.values()]:
            self._hooks.append(component.register_forward_pre_hook(self._enter))
            self._hooks.append(component.register_forward_hook(self._leave))
        self._release = HeldBackUpdates.release

        def release_inside_heads(held: HeldBackUpdates) -> None:
            self._enter()
            try:
                self._release(held)
            finally:
                self._leave()

        HeldBackUpdates.release = release_inside_heads  # type: ignore[method-assign]

    def _add_backbone_outputs(self, module: torch.nn.Module, args: Any, outputs: Any) -> None:
        self._batch_storages.update(_storage_of(tensor) for tensor in _tensors_in(outputs))

    def _enter(self, *_: Any) -> None:
        self._inside_components += 1

    def _leave(self, *_: Any) -> None:
        self._inside_components -= 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self._inside_components and any(
            _storage_of(tensor) in self._batch_storages for tensor in _tensors_in((args, kwargs))
        ):
            self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **kwargs)

    def __exit__(self, *exc: Any) -> None:
        HeldBackUpdates.release = self._release  # type: ignore[method-assign]
        for hook in self._hooks:
            hook.remove()
        super().__exit__(*exc)


def _tensors_in(value: Any) -> List[torch.Tensor]:
    return [item for item in tree_flatten(value)[0] if isinstance(item, torch.Tensor)]


def _storage_of(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def row_ops_of_forward(model_class: type, vocab, tasks: List[str]) -> Dict[str, int]:
    heads = {head: classifier(vocab) for head in sorted(set(tasks))}
    model = model_class(vocab, backbone(vocab), heads)
    inputs = batch(tasks)
    with RowOpCounter(model, inputs) as counter:
        outputs = model(**inputs)
    assert set(heads) <= {key.split("_")[0] for key in outputs}, "every head should have run"
    return dict(counter.counts)


def test_homogeneous_batch_costs_no_op_on_its_rows(vocab):
    assert row_ops_of_forward(MultiTaskModel, vocab, ["a"] * 6) == {}


@pytest.mark.parametrize("heads", [2, 3])
def test_mixed_batch_costs_one_gather_per_input_for_all_heads(vocab, heads):
    # The heads' parts are views of the one gathered tensor, so their split is not counted.
    tasks = ["abc"[row % heads] for row in range(6)]
    assert row_ops_of_forward(MultiTaskModel, vocab, tasks) == {"index_select": HEAD_INPUTS}


def test_contiguous_rows_cost_views_and_no_gather(vocab):
    # narrow() dispatches as slice, which returns a view of the batch: no data is copied.
    tasks = ["a", "a", "a", "b", "b", "c"]
    assert row_ops_of_forward(MultiTaskModel, vocab, tasks) == {"slice": 3 * HEAD_INPUTS}


def test_allennlp_gathers_even_for_a_homogeneous_batch(vocab):
    """The counter's control: AllenNLP's model copies every head input, whatever the batch."""
    counts = row_ops_of_forward(AllenNlpMultiTaskModel, vocab, ["a"] * 6)
    assert counts.get("index_select") == HEAD_INPUTS
