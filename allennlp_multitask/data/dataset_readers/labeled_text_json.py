import json
from typing import Dict, Iterable, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.common.file_utils import cached_path
from allennlp.data import DatasetReader, Instance, TokenIndexer, Tokenizer
from allennlp.data.fields import Field, LabelField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer
from allennlp.data.tokenizers import WhitespaceTokenizer


@DatasetReader.register("labeled_text_json")
class LabeledTextJsonReader(DatasetReader):
    """
    Reads JSON lines holding a text and an optional label under keys you choose, and makes instances
    whose fields are named after those keys: `{"question": "...", "topic": "sports"}` with
    `text_key="question"`, `label_key="topic"` gives a `TextField` named `question` and a `LabelField`
    named `topic`. Each task of a multitask setup can so keep its own field names and label namespace;
    the model's `arg_name_mapping` renames them for the backbone and heads.

    Registered as a `DatasetReader` with name "labeled_text_json".

    # Parameters

    text_key : `str`, optional (default = `"text"`)
        The JSON key, and field name, of the text.
    label_key : `str`, optional (default = `"label"`)
        The JSON key, and field name, of the label. Lines without it give unlabeled instances.
    label_namespace : `str`, optional (default = `"labels"`)
        The vocabulary namespace of the labels.
    tokenizer : `Tokenizer`, optional (default = `WhitespaceTokenizer()`)
    token_indexers : `Dict[str, TokenIndexer]`, optional (default = `{"tokens": SingleIdTokenIndexer()}`)
    **kwargs
        `DatasetReader`'s own options, e.g. `max_instances`.
    """

    def __init__(
        self,
        text_key: str = "text",
        label_key: str = "label",
        label_namespace: str = "labels",
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
        self._label_namespace = label_namespace
        self._tokenizer = tokenizer or WhitespaceTokenizer()
        self._token_indexers = token_indexers or {"tokens": SingleIdTokenIndexer()}

    def _read(self, file_path: str) -> Iterable[Instance]:
        with open(cached_path(file_path)) as data_file:
            for line_number, line in self.shard_iterable(enumerate(data_file, start=1)):
                if not line.strip():
                    continue
                record = json.loads(line)
                if self._text_key not in record:
                    raise ValueError(
                        f"{file_path}:{line_number} has no '{self._text_key}' (text_key); "
                        f"it has {sorted(record)}."
                    )
                yield self.text_to_instance(record[self._text_key], record.get(self._label_key))

    def text_to_instance(self, text: str, label: Optional[str] = None) -> Instance:  # type: ignore
        """An instance of `text`, with `label` when given."""
        fields: Dict[str, Field] = {self._text_key: TextField(self._tokenizer.tokenize(text))}
        if label is not None:
            fields[self._label_key] = LabelField(str(label), label_namespace=self._label_namespace)
        return Instance(fields)

    def apply_token_indexers(self, instance: Instance) -> None:
        instance[self._text_key].token_indexers = self._token_indexers  # type: ignore
