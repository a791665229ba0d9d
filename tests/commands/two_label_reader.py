"""
A reader of JSON lines `{"sentence": "...", "y1": "a", "y2": "b"}` whose instances have a `y2` field only where
the line has one, as a user's reader for two heads may; registered as "test_two_label_json" when imported
(pass this module to `--include-package`).
"""

import json
from typing import Iterable

from allennlp.data import DatasetReader, Instance
from allennlp.data.fields import LabelField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer
from allennlp.data.tokenizers import WhitespaceTokenizer


@DatasetReader.register("test_two_label_json")
class TwoLabelJsonReader(DatasetReader):
    """Instances with a `sentence` `TextField`, a `y1` `LabelField` and, where the line has it, a `y2` one."""

    def _read(self, file_path: str) -> Iterable[Instance]:
        with open(file_path) as lines:
            for line in lines:
                record = json.loads(line)
                fields = {
                    "sentence": TextField(WhitespaceTokenizer().tokenize(record["sentence"])),
                    "y1": LabelField(record["y1"], label_namespace="y1_labels"),
                }
                if "y2" in record:
                    fields["y2"] = LabelField(record["y2"], label_namespace="y2_labels")
                yield Instance(fields)

    def apply_token_indexers(self, instance: Instance) -> None:
        instance["sentence"].token_indexers = {"tokens": SingleIdTokenIndexer()}  # type: ignore
