"""AllenNLP's `pretrained_transformer` backbone in our model, loaded from a local directory (no hub)."""

import json

from allennlp.commands.train import train_model
from allennlp.common import Params
from allennlp.models.archival import load_archive

from allennlp_multitask import MultiTaskModel
from tests.modules.backbones.transformer_configs import classifier, reader


def test_multitask_model_trains_on_a_local_transformer(tiny_bert_dir, tmp_path, in_repo_root):
    name = str(tiny_bert_dir)
    data = {task: f"examples/data/{task}_validation.jsonl" for task in ("sentiment", "topic")}
    config = {
        "dataset_reader": {
            "type": "multitask",
            "readers": {"sentiment": reader(name, "sentence", "sentiment"), "topic": reader(name, "question", "topic")},
        },
        "data_loader": {"type": "multitask", "scheduler": {"type": "homogeneous_roundrobin", "batch_size": 8}},
        "train_data_path": data,
        "validation_data_path": data,
        "model": {
            "type": "multitask",
            "backbone": {"type": "pretrained_transformer", "model_name": name},
            "heads": {"sentiment": classifier("sentiment_labels"), "topic": classifier("topic_labels")},
            "arg_name_mapping": {
                "backbone": {"sentence": "text", "question": "text"},
                "sentiment": {"sentiment": "label"},
                "topic": {"topic": "label"},
            },
        },
        "trainer": {"optimizer": {"type": "adam", "lr": 1e-3}, "num_epochs": 1},
    }
    model = train_model(Params(config), str(tmp_path))
    assert isinstance(model, MultiTaskModel)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"validation_sentiment_accuracy", "validation_topic_accuracy"} <= set(metrics)
    loaded = load_archive(str(tmp_path / "model.tar.gz")).model
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert any(key.startswith("_backbone._embedder.transformer_model.") for key in model.state_dict())
