"""Importing the package registers every component under the names configs use, AllenNLP's replaced."""
from allennlp.data import DataLoader, DatasetReader
from allennlp.data.data_loaders.multitask_epoch_sampler import MultiTaskEpochSampler
from allennlp.models import Model
from allennlp.models.heads import Head
from allennlp.modules import Backbone
from allennlp.predictors import Predictor

from allennlp_multitask.data import LabeledTextJsonReader, MultiTaskDataLoader, TemperatureSampler
from allennlp_multitask.models import (
    DynamicWeightAverage,
    LossWeighting,
    MultiTaskModel,
    StaticLossWeighting,
    UncertaintyLossWeighting,
)
from allennlp_multitask.models.heads import RegressionHead, TaggerHead
from allennlp_multitask.modules import EmbedderBackbone
from allennlp_multitask.predictors import MultiTaskPredictor


def test_components_are_registered_under_their_config_names():
    assert Model.by_name("multitask") is MultiTaskModel
    assert Predictor.by_name("multitask") is MultiTaskPredictor
    assert Backbone.by_name("embedder") is EmbedderBackbone
    assert Head.by_name("tagger") is TaggerHead
    assert Head.by_name("regression") is RegressionHead
    assert DatasetReader.by_name("labeled_text_json") is LabeledTextJsonReader
    assert DataLoader.by_name("multitask") is MultiTaskDataLoader
    assert MultiTaskEpochSampler.by_name("temperature") is TemperatureSampler
    assert LossWeighting.by_name("static") is StaticLossWeighting
    assert LossWeighting.by_name("uncertainty") is UncertaintyLossWeighting
    assert LossWeighting.by_name("dwa") is DynamicWeightAverage
