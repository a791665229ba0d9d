from allennlp.models import Model
from allennlp.modules import Backbone

import allennlp_multitask


def test_package_replaces_allennlps_multitask_registration():
    assert Model.by_name("multitask") is allennlp_multitask.MultiTaskModel
    assert Backbone.by_name("embedder") is allennlp_multitask.modules.EmbedderBackbone
