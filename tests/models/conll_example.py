"""The bundled POS + NER + topic example (examples/conll_pos_ner.jsonnet), built from its config without training."""

import json
from typing import Any

from allennlp.common import Params
from allennlp.data import Batch, DatasetReader, Instance, Vocabulary
from allennlp.models import Model

from tests.conftest import REPO_ROOT

CONLL_CONFIG = REPO_ROOT / "examples" / "conll_pos_ner.jsonnet"


def conll_params(overrides: dict[str, Any] | None = None) -> Params:
    """The example's configuration with `overrides`, keyed by dotted paths (`{"model.task_heads": ...}`)."""
    return Params.from_file(str(CONLL_CONFIG), json.dumps(overrides or {}))


def read_instances(task: str, split: str = "train") -> list[Instance]:
    """The example's instances of `task` ("conll" or "topic") from its `split` ("train" or "validation")."""
    params = conll_params()
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    path = REPO_ROOT / params.pop(f"{split}_data_path")[task]
    return list(reader.readers[task].read(str(path)))


def conll_model(overrides: dict[str, Any] | None = None) -> Model:
    """An untrained model of the example (with `overrides`), its vocabulary from the training data."""
    vocab = Vocabulary.from_instances(read_instances("conll") + read_instances("topic"))
    return Model.from_params(params=conll_params(overrides).pop("model"), vocab=vocab)


def tensor_batch(model: Model, instances: list[Instance]) -> dict[str, Any]:
    """`instances` (all of one task) indexed with the model's vocabulary, as the model's keyword arguments."""
    batch = Batch(instances)
    batch.index_instances(model.vocab)
    return batch.as_tensor_dict()
