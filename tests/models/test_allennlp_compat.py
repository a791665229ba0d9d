"""Our model is a drop-in: AllenNLP's weights load into it and give the same outputs, and AllenNLP's own
model test harness passes on the bundled example."""

import copy
import json

import pytest
import torch
from allennlp.common import Params
from allennlp.common.testing import ModelTestCase
from allennlp.data import DataLoader
from allennlp.models import MultiTaskModel as AllenNlpMultiTaskModel
from allennlp.models.archival import load_archive

from allennlp_multitask import MultiTaskModel
from tests.conftest import EXAMPLE_CONFIG


def validation_batches(archive, in_repo_root):
    params = archive.config.duplicate()
    loader_params = params["data_loader"]
    loader_params["shuffle"] = False
    loader = DataLoader.from_params(
        params=loader_params, reader=archive.dataset_reader, data_path=params["validation_data_path"].as_dict()
    )
    loader.index_with(archive.model.vocab)
    return list(loader)


def test_allennlp_state_dict_loads_and_predicts_identically(example_archive, in_repo_root):
    archive = load_archive(str(example_archive))
    ours = archive.model
    assert type(ours) is MultiTaskModel
    model_params = archive.config.duplicate()["model"].as_dict()
    model_params.pop("type")
    # The example weighs only "sentiment"; AllenNLP's class needs every head named (KeyError otherwise).
    model_params["loss_weights"] = {"sentiment": 1.0, "topic": 1.0}
    theirs = AllenNlpMultiTaskModel.from_params(params=Params(copy.deepcopy(model_params)), vocab=ours.vocab)
    assert type(theirs) is AllenNlpMultiTaskModel
    theirs.load_state_dict(ours.state_dict(), strict=True)
    fresh = MultiTaskModel.from_params(params=Params(model_params), vocab=ours.vocab)
    fresh.load_state_dict(theirs.state_dict(), strict=True)
    for model in (theirs, fresh):
        model.eval()
    batches = validation_batches(archive, in_repo_root)
    assert {batch["task"][0] for batch in batches} == {"sentiment", "topic"}
    for batch in batches:
        expected = theirs(**batch)
        actual = fresh(**batch)
        assert expected.keys() == actual.keys()
        for key, value in expected.items():
            assert torch.equal(value, actual[key]), key
    assert fresh.get_metrics() == theirs.get_metrics()


class TestExampleWithAllenNlpHarness(ModelTestCase):
    def test_example_can_train_save_and_load(self, in_repo_root):
        # The example batches one task at a time and the harness checks gradients on the first batch
        # (a "sentiment" batch with shuffling off), so the "topic" head rightly has no gradient there.
        self.ensure_model_can_train_save_and_load(
            EXAMPLE_CONFIG,
            overrides='{"trainer.num_epochs": 1}',
            gradients_to_ignore={f"_heads.topic._classification_layer.{name}" for name in ("weight", "bias")},
        )


@pytest.mark.parametrize("task", ["sentiment", "topic"])
def test_example_heads_learn(example_archive, task):
    metrics = (example_archive.parent / "metrics.json").read_text()
    assert json.loads(metrics)[f"best_validation_{task}_accuracy"] > 0.9
