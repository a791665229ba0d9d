from typing import Dict, Iterable, Iterator, List, Optional, TextIO, Tuple

from allennlp.common.checks import ConfigurationError
from allennlp.common.file_utils import cached_path
from allennlp.data import DatasetReader, Instance, Token, TokenIndexer
from allennlp.data.fields import Field, SequenceLabelField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer

from allennlp_multitask.data.absent_labels import absent_labels_field

TOKENS = "tokens"
CONLL_2003_COLUMNS = {"pos_tags": 1, "chunk_tags": 2, "ner_tags": 3}

# A token's tag in a column that holds no tags of that kind for its sentence (CoNLL-U's "no annotation").
ABSENT = "_"

Sentence = Tuple[List[Token], Dict[str, Optional[List[str]]]]


@DatasetReader.register("conll_tags")
class ConllTagsReader(DatasetReader):
    """
    Reads CoNLL-style files, as CoNLL-2003's `WORD POS CHUNK NER`: a token per line, followed by its tags
    in whitespace-separated columns; sentences end at blank lines and `-DOCSTART-` lines. Each sentence
    gives a `TextField` named `tokens` and, for each tag column of `tag_columns`, a `SequenceLabelField`
    of that name (also its label namespace), for a tagger to learn from.

    Unlike AllenNLP's `conll2003` reader, whose `feature_labels` (its only way to give an instance more
    than one tag field) are required inputs also when predicting, every tag field is optional: JSON for
    the multitask predictor holds the `tokens` alone (`{"task": "conll", "tokens": ["Lena", "Berg"]}`).

    Every token line of a file must have the same number of columns, enough for `tag_columns`: a line
    that differs (e.g. a token with a space in it) raises `ValueError` naming the file and line.

    Partial labels: a sentence whose column holds `_` on every token (CoNLL-U's "no annotation") has no
    tags of that kind; its tag field then holds a placeholder, which the multitask model's heads neither
    learn nor score from (see the `absent_labels` field every instance has, naming such fields). A column
    with `_` on some tokens of a sentence only raises `ValueError` naming the file and line.

    Registered as a `DatasetReader` with name "conll_tags".

    # Parameters

    tag_columns : `Dict[str, int]`, optional (default = `{"pos_tags": 1, "chunk_tags": 2, "ner_tags": 3}`)
        Each tag field's name and the column its tags are in (column 0 holds the tokens). Tags are read
        as they are written (CoNLL-2003's NER and chunk tags are IOB1).
    token_indexers : `Dict[str, TokenIndexer]`, optional (default = `{"tokens": SingleIdTokenIndexer()}`)
    **kwargs
        `DatasetReader`'s own options, e.g. `max_instances`.
    """

    def __init__(
        self,
        tag_columns: Optional[Dict[str, int]] = None,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        **kwargs,
    ) -> None:
        # The reader shards its own sentences, for data-loader workers and distributed ranks alike.
        kwargs.update(manual_distributed_sharding=True, manual_multiprocess_sharding=True)
        super().__init__(**kwargs)
        self._tag_columns = dict(CONLL_2003_COLUMNS if tag_columns is None else tag_columns)
        if TOKENS in self._tag_columns or any(column < 1 for column in self._tag_columns.values()):
            raise ConfigurationError(
                f"conll_tags's tag_columns must name fields other than '{TOKENS}' and columns from 1 on "
                f"(column 0 holds the tokens), got {self._tag_columns}."
            )
        self._column_count = 1 + max(self._tag_columns.values(), default=0)
        self._token_indexers = token_indexers or {TOKENS: SingleIdTokenIndexer()}

    def _read(self, file_path: str) -> Iterable[Instance]:
        with open(cached_path(file_path)) as data_file:
            for tokens, tags in self.shard_iterable(self._sentences(data_file, file_path)):
                yield self.text_to_instance(tokens, **tags)

    def _sentences(self, data_file: TextIO, file_path: str) -> Iterator[Sentence]:
        """Each sentence of the file; every line is checked, whichever sentences this worker keeps."""
        first_line: Optional[Tuple[int, int]] = None  # The first token line's number and column count.
        rows: List[List[str]] = []
        first_row_line = 0
        for line_number, line in enumerate(data_file, start=1):
            columns = line.split()
            if not columns or columns[0] == "-DOCSTART-":
                if rows:
                    yield self._sentence(rows, file_path, first_row_line)
                    rows = []
                continue
            if first_line is None:
                first_line = (line_number, len(columns))
                if len(columns) < self._column_count:
                    raise ValueError(
                        f"{file_path}:{line_number} has {len(columns)} column(s), but tag_columns "
                        f"{self._tag_columns} reads column {self._column_count - 1}."
                    )
            elif len(columns) != first_line[1]:
                raise ValueError(
                    f"{file_path}:{line_number} has {len(columns)} column(s), but {file_path}:{first_line[0]} "
                    f"has {first_line[1]}: every line holds a token and its tags, separated by whitespace."
                )
            if not rows:
                first_row_line = line_number
            rows.append(columns)
        if rows:
            yield self._sentence(rows, file_path, first_row_line)

    def _sentence(self, rows: List[List[str]], file_path: str, first_line: int) -> Sentence:
        """The sentence of `rows`, read from `file_path` from line `first_line` on."""
        tokens = [Token(row[0]) for row in rows]
        tags: Dict[str, Optional[List[str]]] = {}
        for name, column in self._tag_columns.items():
            labels = [row[column] for row in rows]
            absent = [row for row, label in enumerate(labels) if label == ABSENT]
            if absent and len(absent) != len(labels):
                raise ValueError(
                    f"{file_path}:{first_line + absent[0]} has '{ABSENT}' (no annotation) in column {column} "
                    f"({name}), but other tokens of its sentence have tags there: a sentence has tags of a "
                    f"kind on every token or on none ('{ABSENT}' on every token)."
                )
            tags[name] = None if absent else labels
        return tokens, tags

    def text_to_instance(self, tokens: List[Token], **tags: Optional[List[str]]) -> Instance:  # type: ignore
        """
        An instance of `tokens`, with a tag field for each of `tags` given (by field name, one tag per
        token; `None` for a sentence without tags of that kind: the field holds a placeholder, named in
        the `absent_labels` field). Raises `ValueError` for a name that is not one of `tag_columns`.
        """
        unknown = sorted(set(tags) - set(self._tag_columns))
        if unknown:
            raise ValueError(f"conll_tags has no tag field(s) {unknown}; its tag fields: {sorted(self._tag_columns)}.")
        text = TextField(tokens)
        fields: Dict[str, Field] = {TOKENS: text}
        absent = []
        for name, labels in tags.items():
            if labels is None:
                absent.append(name)
                fields[name] = SequenceLabelField([0] * len(tokens), text, label_namespace=name)
            else:
                fields[name] = SequenceLabelField(labels, text, label_namespace=name)
        fields.update(absent_labels_field(absent))
        return Instance(fields)

    def apply_token_indexers(self, instance: Instance) -> None:
        instance[TOKENS].token_indexers = self._token_indexers  # type: ignore
