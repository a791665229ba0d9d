import difflib
import json
from typing import Any, Dict, Iterable, Optional, Union

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.file_utils import cached_path
from allennlp.data import DatasetReader, Instance, TokenIndexer, Tokenizer
from allennlp.data.fields import Field, LabelField, TensorField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer
from allennlp.data.tokenizers import WhitespaceTokenizer

from allennlp_multitask.data.json_lines import parse_json_object


@DatasetReader.register("labeled_text_json")
class LabeledTextJsonReader(DatasetReader):
    """
    Reads JSON lines holding a text and an optional label under keys you choose, and makes instances
    whose fields are named after those keys: `{"question": "...", "topic": "sports"}` with
    `text_key="question"`, `label_key="topic"` gives a `TextField` named `question` and a `LabelField`
    named `topic`. Each task of a multitask setup can so keep its own field names and label namespace;
    the model's `arg_name_mapping` renames them for the backbone and heads.

    Labels are class names: strings, or integers and booleans, which become the strings `"1"`, `"true"`
    and `"false"` (so `1` and `"1"` are one class). Floats, lists and objects are refused, as is a text
    that is not a string. With `numeric_labels`, labels are numbers to regress on instead (for the
    `regression` head): integers or floats, each a float `TensorField` holding one value. A file is
    labelled on every line or on none (a file to predict from; a label of `null` counts as none): a file
    with both, a line that is not a JSON object, or a line without the label but with a key spelled
    almost like `label_key` raises `ValueError` naming the file and line.

    Registered as a `DatasetReader` with name "labeled_text_json".

    # Parameters

    text_key : `str`, optional (default = `"text"`)
        The JSON key, and field name, of the text.
    label_key : `str`, optional (default = `"label"`)
        The JSON key, and field name, of the label. Files without it give unlabeled instances.
    label_namespace : `str`, optional (default = `None`, read as `"labels"`)
        The vocabulary namespace of the labels. Every task's reader defaults to `"labels"`: give each
        task its own (e.g. `"topic_labels"`, and the same in its head), or write `"labels"` in each
        task's reader to share one label set on purpose; `allennlp train` refuses tasks that would share
        it by default (see the model configuration guide).
    numeric_labels : `bool`, optional (default = `False`)
        Labels are numbers (a `TensorField` of one float each, e.g. for the `regression` head), not class
        names; `label_namespace` is then unused.
    tokenizer : `Tokenizer`, optional (default = `WhitespaceTokenizer()`)
    token_indexers : `Dict[str, TokenIndexer]`, optional (default = `{"tokens": SingleIdTokenIndexer()}`)
    **kwargs
        `DatasetReader`'s own options, e.g. `max_instances`.
    """

    def __init__(
        self,
        text_key: str = "text",
        label_key: str = "label",
        label_namespace: Optional[str] = None,
        numeric_labels: bool = False,
        tokenizer: Optional[Tokenizer] = None,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        **kwargs,
    ) -> None:
        # The reader shards its own lines (see `_read`), for data-loader workers and distributed ranks alike.
        kwargs.update(manual_distributed_sharding=True, manual_multiprocess_sharding=True)
        super().__init__(**kwargs)
        if text_key == label_key:
            raise ConfigurationError(f"labeled_text_json needs different text_key and label_key, got '{text_key}'.")
        self._text_key = text_key
        self._label_key = label_key
        self.label_namespace = label_namespace or "labels"
        self.label_namespace_given = label_namespace is not None
        self.numeric_labels = numeric_labels
        self._tokenizer = tokenizer or WhitespaceTokenizer()
        self._token_indexers = token_indexers or {"tokens": SingleIdTokenIndexer()}

    def _read(self, file_path: str) -> Iterable[Instance]:
        # The first line seen with a label and the first without one: a file must not have both.
        first_labelled = first_unlabelled = 0
        with open(cached_path(file_path)) as data_file:
            for line_number, line in self.shard_iterable(enumerate(data_file, start=1)):
                if not line.strip():
                    continue
                where = f"{file_path}:{line_number}"
                record = parse_json_object(line, where)
                if self._text_key not in record:
                    raise ValueError(f"{where} has no '{self._text_key}' (text_key); it has {sorted(record)}.")
                label = record.get(self._label_key)
                if label is None:
                    self._check_label_key(record, where)
                    first_unlabelled = first_unlabelled or line_number
                else:
                    first_labelled = first_labelled or line_number
                if first_labelled and first_unlabelled:
                    raise ValueError(
                        f"{file_path}:{first_unlabelled} has no '{self._label_key}' (label_key), but "
                        f"{file_path}:{first_labelled} has one: label every line of a file, or none "
                        "(a file to predict from)."
                    )
                try:
                    yield self.text_to_instance(record[self._text_key], label)
                except ValueError as error:
                    raise ValueError(f"{where}: {error}") from None

    @property
    def text_key(self) -> str:
        """The JSON key, and field name, of the text."""
        return self._text_key

    def _check_label_key(self, record: Dict[str, Any], where: str) -> None:
        """Raises for a line without the label but with a key spelled almost like it (a misspelled `label_key`)."""
        others = [key for key in record if key not in (self._text_key, self._label_key)]
        lookalikes = difflib.get_close_matches(self._label_key, others, n=1, cutoff=0.8)
        if lookalikes:
            raise ValueError(
                f"{where} has no '{self._label_key}' (label_key) but has '{lookalikes[0]}': is label_key misspelled?"
            )

    def text_to_instance(  # type: ignore
        self, text: str, label: Optional[Union[str, int, bool, float]] = None
    ) -> Instance:
        """
        An instance of `text`, with `label` when given. Raises `ValueError` for a text that is not a string
        or has no tokens (empty, or only spaces), and a label that is not a string, an integer or a boolean
        (with `numeric_labels`, not an integer or a float).
        """
        if not isinstance(text, str):
            raise ValueError(f"the text must be a string, got {type(text).__name__} {text!r}.")
        # A transformer's tokenizer gives an empty text its special tokens ([CLS] [SEP]).
        tokens = self._tokenizer.tokenize(text) if text.strip() else []
        if not tokens:
            raise ValueError(f"the text ('{self._text_key}') is empty: {text!r} has no tokens.")
        fields: Dict[str, Field] = {self._text_key: TextField(tokens)}
        if label is not None:
            fields[self._label_key] = self._label_field(label)
        return Instance(fields)

    def _label_field(self, label: Union[str, int, bool, float]) -> Field:
        if not self.numeric_labels:
            return LabelField(self._label_name(label), label_namespace=self.label_namespace)
        if isinstance(label, bool) or not isinstance(label, (int, float)):
            raise ValueError(
                f"the label ('{self._label_key}') must be a number (numeric_labels), got "
                f"{type(label).__name__} {label!r}."
            )
        return TensorField(torch.tensor(float(label)))

    def _label_name(self, label: Any) -> str:
        if isinstance(label, bool):
            return json.dumps(label)
        if isinstance(label, (str, int)):
            return str(label)
        raise ValueError(
            f"the label ('{self._label_key}') must be a class name (a string, an integer or a boolean), got "
            f"{type(label).__name__} {label!r}; numbers to regress on need numeric_labels."
        )

    def apply_token_indexers(self, instance: Instance) -> None:
        instance[self._text_key].token_indexers = self._token_indexers  # type: ignore
