"""Our `Batch` gives exactly AllenNLP's tensors, for every field type and indexer, padded or cut."""

from collections import defaultdict
from typing import Any, Dict, List

import pytest
import torch
from allennlp.data import Instance, Token, Vocabulary
from allennlp.data.batch import Batch as AllenNlpBatch
from allennlp.data.fields import LabelField, MetadataField, SequenceLabelField, TensorField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer, TokenCharactersIndexer, TokenIndexer
from hypothesis import given, settings
from hypothesis import strategies as st

from allennlp_multitask.data.batch import Batch

WORDS = ["a", "bb", "ccc", "the", "dog", "Dog"]


class CapitalIndexer(TokenIndexer):
    """Two lists per text, padded by the base class: ids, and a bool per token (is it capitalised)."""

    def count_vocab_items(self, token: Token, counter: Dict[str, Dict[str, int]]) -> None:
        pass

    def tokens_to_indices(self, tokens: List[Token], vocabulary: Vocabulary) -> Dict[str, List[Any]]:
        return {"ids": [len(token.text) for token in tokens], "capital": [token.text[0].isupper() for token in tokens]}


def indexers(kind: str, min_padding: int) -> Dict[str, TokenIndexer]:
    return {
        "single": {"tokens": SingleIdTokenIndexer(token_min_padding_length=min_padding)},
        "two": {"tokens": SingleIdTokenIndexer(), "lower": SingleIdTokenIndexer("lower", lowercase_tokens=True)},
        "characters": {"characters": TokenCharactersIndexer(min_padding_length=1)},  # Not the base padding.
        "capital": {"capital": CapitalIndexer()},
    }[kind]


@st.composite
def batches(draw: st.DrawFn) -> List[Instance]:
    """1-5 instances with the same fields: a text (some indexers), and drawn from labels, tags, metadata, tensors."""
    kind = draw(st.sampled_from(["single", "two", "characters", "capital"]))
    shared = draw(st.booleans())  # One indexer dict for all texts, as readers do, or one each.
    min_padding = draw(st.integers(0, 3))
    fields = draw(st.sets(st.sampled_from(["label", "label_id", "tags", "metadata", "tensor"])))
    shared_indexers = indexers(kind, min_padding)
    instances = []
    for _ in range(draw(st.integers(1, 5))):
        tokens = [Token(word) for word in draw(st.lists(st.sampled_from(WORDS), max_size=5))]
        text = TextField(tokens, shared_indexers if shared else indexers(kind, min_padding))
        instance = {"text": text}
        if "label" in fields:
            instance["label"] = LabelField(draw(st.sampled_from(["yes", "no"])))
        if "label_id" in fields:
            instance["label_id"] = LabelField(draw(st.integers(0, 9)), skip_indexing=True)
        if "tags" in fields:
            instance["tags"] = SequenceLabelField([draw(st.sampled_from("NVD")) for _ in tokens], text)
        if "metadata" in fields:
            instance["metadata"] = MetadataField({"words": [token.text for token in tokens]})
        if "tensor" in fields:
            instance["tensor"] = TensorField(torch.arange(float(len(tokens))), padding_value=-1)
        instances.append(Instance(instance))
    return indexed(instances)


def indexed(instances: List[Instance]) -> List[Instance]:
    vocab = Vocabulary()
    for instance in instances:
        counts: Dict[str, Dict[str, int]] = defaultdict(lambda: defaultdict(int))
        instance.count_vocab_items(counts)
        for namespace, items in counts.items():
            vocab.add_tokens_to_namespace(list(items), namespace)
    for instance in instances:
        instance.index_fields(vocab)
    return instances


def assert_same(ours: Any, theirs: Any, where: str = "batch") -> None:
    assert type(ours) is type(theirs), where
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(theirs, torch.Tensor):
        assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape), where
        assert torch.equal(ours, theirs), where
    else:
        assert ours == theirs, where


def allennlp_result(instances: List[Instance], padding_lengths: Any = None) -> Any:
    """AllenNLP's tensors, or the type of error it raises."""
    try:
        return AllenNlpBatch(instances).as_tensor_dict(padding_lengths)
    except Exception as error:  # Whatever AllenNLP raises, ours must raise too.
        return type(error)


@settings(max_examples=300, deadline=None)
@given(instances=batches())
def test_the_tensors_are_allennlps(instances: List[Instance]):
    expected = allennlp_result(instances)
    if isinstance(expected, type):  # Texts whose indexer gives bools, one of them empty (a long row).
        with pytest.raises(expected):
            Batch(instances).as_tensor_dict()
    else:
        assert_same(Batch(instances).as_tensor_dict(), expected)


@settings(max_examples=100, deadline=None)
@given(instances=batches(), lengths=st.dictionaries(st.sampled_from(["text", "tags"]), st.integers(0, 6)))
def test_given_padding_lengths_pad_and_cut_as_allennlps(instances: List[Instance], lengths: Dict[str, int]):
    padding: Dict[str, Dict[str, int]] = defaultdict(dict)  # AllenNLP's needs every field name.
    for field_name, length in lengths.items():
        field = instances[0].fields.get(field_name)
        if field is not None:
            padding[field_name] = {key: length for key in field.get_padding_lengths()}
    expected = allennlp_result(instances, padding)
    if isinstance(expected, type):
        with pytest.raises(expected):
            Batch(instances).as_tensor_dict(padding)
    else:
        assert_same(Batch(instances).as_tensor_dict(padding), expected)


def test_the_common_fields_are_made_a_batch_at_a_time(monkeypatch: pytest.MonkeyPatch):
    """Texts, labels, tags and metadata never go through AllenNLP's per-instance `as_tensor`."""
    text_fields = [TextField([Token(word) for word in WORDS[: index + 1]]) for index in range(3)]
    token_indexers = {"tokens": SingleIdTokenIndexer()}
    instances = []
    for index, text in enumerate(text_fields):
        text.token_indexers = token_indexers
        fields = {"text": text, "label": LabelField(str(index % 2)), "metadata": MetadataField(index)}
        instances.append(Instance({**fields, "tags": SequenceLabelField(["T"] * (index + 1), text)}))
    expected = AllenNlpBatch(indexed(instances)).as_tensor_dict()
    for field_type in (TextField, LabelField, MetadataField, SequenceLabelField):
        monkeypatch.setattr(field_type, "as_tensor", lambda *args: pytest.fail("a per-instance tensor"))
    assert_same(Batch(instances).as_tensor_dict(), expected)
