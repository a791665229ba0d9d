"""
A reader of JSON lines `{"sentence": "...", "score": 0.5}` for the `regression` head, registered as
"scored_text_json" when imported (pass this module to `include_package` so that distributed workers have it).
"""

import json
from typing import Iterable

import torch
from allennlp.data import DatasetReader, Instance
from allennlp.data.fields import TensorField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer
from allennlp.data.tokenizers import WhitespaceTokenizer


@DatasetReader.register("scored_text_json")
class ScoredTextJsonReader(DatasetReader):
    """Instances with a `sentence` `TextField` and a `score` `TensorField` holding one float."""

    def _read(self, file_path: str) -> Iterable[Instance]:
        with open(file_path) as lines:
            for line in lines:
                record = json.loads(line)
                yield Instance(
                    {
                        "sentence": TextField(WhitespaceTokenizer().tokenize(record["sentence"])),
                        "score": TensorField(torch.tensor(float(record["score"]))),
                    }
                )

    def apply_token_indexers(self, instance: Instance) -> None:
        instance["sentence"].token_indexers = {"tokens": SingleIdTokenIndexer()}  # type: ignore
