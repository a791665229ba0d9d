import difflib
import json
from typing import Any, Dict, Iterable, List, Optional, Union

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.file_utils import cached_path
from allennlp.data import DatasetReader, Instance, TokenIndexer, Tokenizer
from allennlp.data.fields import Field, LabelField, TensorField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer
from allennlp.data.tokenizers import WhitespaceTokenizer

from allennlp_multitask.data.absent_labels import absent_labels_field
from allennlp_multitask.data.json_lines import parse_json_object

Label = Union[str, int, bool, float]


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

    With `label_keys`, a line holds several labels, e.g. one per head of its task (the model's
    `task_heads`), each as its own field named after its key, its labels in the namespace `{key}_labels`
    (or numbers, for keys in `numeric_label_keys`). Any of them may be missing or `null` on any line (partial
    labels): the field then holds a placeholder, named in the instance's `absent_labels` field, which the
    multitask model's heads neither learn nor score from.

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
    label_keys : `List[str]`, optional (default = `None`)
        Several labels per line instead of `label_key`'s one: their JSON keys, each also the name of its
        field; its labels go to the namespace `{key}_labels` (e.g. `sentiment_labels`). Not together with
        `label_key`, `label_namespace` or `numeric_labels`.
    numeric_label_keys : `List[str]`, optional (default = `None`)
        Those of `label_keys` whose labels are numbers (as with `numeric_labels`).
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
        label_keys: Optional[List[str]] = None,
        numeric_label_keys: Optional[List[str]] = None,
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
        self.label_keys = None if label_keys is None else list(label_keys)
        self._numeric_label_keys = set(numeric_label_keys or ())
        self._check_label_keys(label_key, label_namespace, numeric_labels)
        self._tokenizer = tokenizer or WhitespaceTokenizer()
        self._token_indexers = token_indexers or {"tokens": SingleIdTokenIndexer()}

    def _check_label_keys(self, label_key: str, label_namespace: Optional[str], numeric_labels: bool) -> None:
        if self.label_keys is None:
            if self._numeric_label_keys:
                raise ConfigurationError("labeled_text_json's numeric_label_keys needs label_keys.")
            return
        if label_key != "label" or label_namespace is not None or numeric_labels:
            raise ConfigurationError(
                "labeled_text_json takes label_keys (several labels, each in the namespace {key}_labels) or "
                "label_key, label_namespace and numeric_labels (one label), not both."
            )
        keys = self.label_keys
        if not keys or self._text_key in keys or len(set(keys)) != len(keys):
            raise ConfigurationError(
                f"labeled_text_json's label_keys must be different keys, none of them text_key "
                f"('{self._text_key}'); got {self.label_keys}."
            )
        unknown = sorted(self._numeric_label_keys - set(self.label_keys))
        if unknown:
            raise ConfigurationError(
                f"labeled_text_json's numeric_label_keys {unknown} are not among its label_keys {self.label_keys}."
            )

    def _read(self, file_path: str) -> Iterable[Instance]:
        if self.label_keys is not None:
            yield from self._read_label_keys(file_path)
            return
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

    def _read_label_keys(self, file_path: str) -> Iterable[Instance]:
        """The instances of a file with `label_keys`, any of which a line may lack."""
        assert self.label_keys is not None  # Read only with label_keys.
        with open(cached_path(file_path)) as data_file:
            for line_number, line in self.shard_iterable(enumerate(data_file, start=1)):
                if not line.strip():
                    continue
                where = f"{file_path}:{line_number}"
                record = parse_json_object(line, where)
                if self._text_key not in record:
                    raise ValueError(f"{where} has no '{self._text_key}' (text_key); it has {sorted(record)}.")
                for key in self.label_keys:
                    if record.get(key) is None:
                        self._check_label_key(record, where, key)
                labels = {key: record.get(key) for key in self.label_keys}
                try:
                    yield self.text_to_instance(record[self._text_key], **labels)
                except ValueError as error:
                    raise ValueError(f"{where}: {error}") from None

    @property
    def text_key(self) -> str:
        """The JSON key, and field name, of the text."""
        return self._text_key

    def _check_label_key(self, record: Dict[str, Any], where: str, label_key: Optional[str] = None) -> None:
        """
        Raises for a line without the label (`label_key`'s, or the one of `label_keys` given) but with a key
        spelled almost like it (a misspelled key).
        """
        key = label_key or self._label_key
        option = "label_key" if label_key is None else "label_keys"
        others = [other for other in record if other not in (self._text_key, self._label_key, *(self.label_keys or ()))]
        lookalikes = difflib.get_close_matches(key, others, n=1, cutoff=0.8)
        if lookalikes:
            raise ValueError(f"{where} has no '{key}' ({option}) but has '{lookalikes[0]}': is {option} misspelled?")

    def text_to_instance(  # type: ignore
        self, text: str, label: Optional[Label] = None, **labels: Optional[Label]
    ) -> Instance:
        """
        An instance of `text`, with `label` when given; with `label_keys`, with `labels` by key instead
        (one field for every key: a placeholder for a label missing or `None`, named in `absent_labels`).
        Raises `ValueError` for a text that is not a string or has no tokens (empty, or only spaces), a
        label that is not a string, an integer or a boolean (for numeric labels, not an integer or a
        float), and a key that is not one of `label_keys`.
        """
        if not isinstance(text, str):
            raise ValueError(f"the text must be a string, got {type(text).__name__} {text!r}.")
        # A transformer's tokenizer gives an empty text its special tokens ([CLS] [SEP]).
        tokens = self._tokenizer.tokenize(text) if text.strip() else []
        if not tokens:
            raise ValueError(f"the text ('{self._text_key}') is empty: {text!r} has no tokens.")
        fields: Dict[str, Field] = {self._text_key: TextField(tokens)}
        if self.label_keys is None:
            if labels:
                raise ValueError(f"labeled_text_json without label_keys takes one label, got {sorted(labels)}.")
            if label is not None:
                fields[self._label_key] = self._label_field(label, self._label_key, self.numeric_labels)
            return Instance(fields)
        unknown = sorted(set(labels) - set(self.label_keys))
        if label is not None or unknown:
            raise ValueError(f"no label key(s) {unknown or ['label']}; label_keys: {self.label_keys}.")
        absent = []
        for key in self.label_keys:
            numeric = key in self._numeric_label_keys
            value = labels.get(key)
            if value is None:
                absent.append(key)
                fields[key] = TensorField(torch.tensor(0.0)) if numeric else LabelField(0, skip_indexing=True)
            else:
                fields[key] = self._label_field(value, key, numeric)
        fields.update(absent_labels_field(absent))
        return Instance(fields)

    def _label_field(self, label: Label, key: str, numeric: bool) -> Field:
        if not numeric:
            namespace = self.label_namespace if self.label_keys is None else f"{key}_labels"
            return LabelField(self._label_name(label, key), label_namespace=namespace)
        if isinstance(label, bool) or not isinstance(label, (int, float)):
            raise ValueError(
                f"the label ('{key}') must be a number (numeric_labels), got {type(label).__name__} {label!r}."
            )
        return TensorField(torch.tensor(float(label)))

    @staticmethod
    def _label_name(label: Any, key: str) -> str:
        if isinstance(label, bool):
            return json.dumps(label)
        if isinstance(label, (str, int)):
            return str(label)
        raise ValueError(
            f"the label ('{key}') must be a class name (a string, an integer or a boolean), got "
            f"{type(label).__name__} {label!r}; numbers to regress on need numeric_labels."
        )

    def apply_token_indexers(self, instance: Instance) -> None:
        instance[self._text_key].token_indexers = self._token_indexers  # type: ignore
