"""
Multitask runs on a tiny BERT with PEFT adapters: their configuration, and training them with `allennlp train`.
"""

import json
from pathlib import Path
from typing import Any, Dict

import pytest

from tests.commands.runs import DATA, allennlp
from tests.modules.backbones.transformer_configs import classifier, reader

TASKS = ("sentiment", "topic")
LORA = {"type": "lora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
VALIDATION_FILES = {task: f"{DATA}{task}_validation.jsonl" for task in TASKS}


def peft_config(model_dir: Path, **backbone: Any) -> Dict[str, Any]:
    """The bundled example's two tasks on the tiny BERT with a LoRA block (and `backbone`'s options)."""
    name = str(model_dir)
    loader = {"type": "multitask", "scheduler": {"type": "homogeneous_roundrobin", "batch_size": 16}}
    return {
        "dataset_reader": {
            "type": "multitask",
            "readers": {"sentiment": reader(name, "sentence", "sentiment"), "topic": reader(name, "question", "topic")},
        },
        "data_loader": loader,
        "validation_data_loader": {**loader, "shuffle": False},
        "train_data_path": {task: f"{DATA}{task}_train.jsonl" for task in TASKS},
        "validation_data_path": VALIDATION_FILES,
        "model": {
            "type": "multitask",
            "backbone": {
                "type": "pretrained_transformer",
                "model_name": name,
                # No dropout: a resumed run then ends exactly as an uninterrupted one.
                "transformer_kwargs": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
                "peft": LORA,
                **backbone,
            },
            "heads": {"sentiment": classifier("sentiment_labels"), "topic": classifier("topic_labels")},
            "arg_name_mapping": {
                "backbone": {"sentence": "text", "question": "text"},
                "sentiment": {"sentiment": "label"},
                "topic": {"topic": "label"},
            },
        },
        "trainer": {"optimizer": {"type": "adam", "lr": 1e-2, "fused": True}, "num_epochs": 2},
    }


def train(config: Dict[str, Any], run: Path, monkeypatch: pytest.MonkeyPatch, *options: str) -> Path:
    config_file = run.parent / f"{run.name}_config.json"
    config_file.write_text(json.dumps(config))
    allennlp("train", str(config_file), "-s", str(run), *options, monkeypatch=monkeypatch)
    return run / "model.tar.gz"
