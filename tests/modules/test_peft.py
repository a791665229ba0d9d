"""A `peft` block on AllenNLP's transformer backbone and embedders: adapters on a frozen transformer."""

import sys
from typing import Any, Dict, List

import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.modules import Backbone
from allennlp.modules.backbones import PretrainedTransformerBackbone as AllenNlpPretrainedTransformerBackbone
from allennlp.modules.token_embedders import TokenEmbedder

from allennlp_multitask.modules import (
    PretrainedTransformerBackbone,
    PretrainedTransformerEmbedder,
    PretrainedTransformerMismatchedEmbedder,
)

LORA = {"type": "lora", "r": 4, "lora_alpha": 8}
PER_TASK = {"x": ["shared", "x"], "y": ["shared", "y"]}


def backbone(model_dir, **options: Any) -> PretrainedTransformerBackbone:
    params = Params({"type": "pretrained_transformer", "model_name": str(model_dir), **options})
    return Backbone.from_params(params, vocab=Vocabulary())


def trainable(module: torch.nn.Module) -> List[str]:
    return [name for name, parameter in module.named_parameters() if parameter.requires_grad]


def text(batch_size: int = 4, length: int = 6) -> Dict[str, Dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    token_ids = torch.randint(5, 18, (batch_size, length), generator=generator)
    return {"tokens": {"token_ids": token_ids, "mask": torch.ones_like(token_ids, dtype=torch.bool)}}


def with_trained_looking_adapters(module: torch.nn.Module) -> torch.nn.Module:
    """LoRA's B matrices start at zero (adapters change nothing); these are random, so that they do."""
    torch.manual_seed(1)
    for name, parameter in module.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter)
    return module.eval()


def test_components_take_allennlps_names():
    assert Backbone.by_name("pretrained_transformer") is PretrainedTransformerBackbone
    assert TokenEmbedder.by_name("pretrained_transformer") is PretrainedTransformerEmbedder
    assert TokenEmbedder.by_name("pretrained_transformer_mismatched") is PretrainedTransformerMismatchedEmbedder


def test_without_peft_the_backbone_is_allennlps(tiny_bert_dir):
    ours = backbone(tiny_bert_dir)
    theirs = AllenNlpPretrainedTransformerBackbone(Vocabulary(), str(tiny_bert_dir))
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert trainable(ours) == trainable(theirs)
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(text())["encoded_text"], theirs(text())["encoded_text"], rtol=0, atol=0)


def test_a_lora_block_trains_only_the_adapters_of_peft_default_target_modules(tiny_bert_dir):
    module = backbone(tiny_bert_dir, peft=LORA)
    names = trainable(module)
    # PEFT's default for BERT: LoRA on the attention's query and value projections.
    assert names and all(".lora_A.default." in name or ".lora_B.default." in name for name in names)
    assert {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in names} == {"query", "value"}
    # The frozen transformer's weights are all still there (and in the state dict).
    assert sum(p.numel() for p in module.parameters()) > sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_a_fresh_lora_adapter_changes_nothing_until_trained(tiny_bert_dir):
    adapted, plain = backbone(tiny_bert_dir, peft=LORA).eval(), backbone(tiny_bert_dir).eval()
    torch.testing.assert_close(adapted(text())["encoded_text"], plain(text())["encoded_text"])


@pytest.mark.parametrize("embedder_type", ["pretrained_transformer", "pretrained_transformer_mismatched"])
def test_embedders_take_a_peft_block(tiny_bert_dir, embedder_type):
    params = {"type": embedder_type, "model_name": str(tiny_bert_dir), "peft": {**LORA, "target_modules": ["key"]}}
    embedder = TokenEmbedder.from_params(Params(params))
    names = trainable(embedder)
    assert names and all(".key.lora_" in name for name in names)


def test_other_peft_methods_come_by_type_name(tiny_bert_dir):
    ia3 = {"type": "ia3", "target_modules": ["key", "output.dense"], "feedforward_modules": ["output.dense"]}
    names = trainable(backbone(tiny_bert_dir, peft=ia3))
    assert names and all(".ia3_l.default" in name for name in names)


@pytest.mark.parametrize(
    "peft, message",
    [
        ({"type": "lorra"}, r"backbone's peft must name one of PEFT's methods .*'lora'.*got 'lorra'"),
        ({"r": 4}, r"backbone's peft must name one of PEFT's methods .*got None"),
        ({"type": "prefix_tuning"}, r"backbone's peft must name one of PEFT's methods that adapt"),
        ({"type": "lora", "rank": 4}, r'backbone\'s peft \("lora"\): .*unexpected keyword argument \'rank\''),
        (
            {"type": "lora", "target_modules": ["qkv"]},
            r"backbone's peft: Target modules \{'qkv'\} not found.*target_modules names .*'query'",
        ),
    ],
)
def test_peft_mistakes_fail_at_construction(tiny_bert_dir, peft, message):
    with pytest.raises(ConfigurationError, match=message):
        backbone(tiny_bert_dir, peft=peft)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"task_adapters": PER_TASK}, "task_adapters needs a peft block"),
        (
            {"peft": {**LORA, "modules_to_save": ["pooler.dense"]}, "task_adapters": PER_TASK},
            r"modules_to_save \(\['pooler.dense'\]\) needs a single adapter, not several \(\['shared', 'x', 'y'\]\)",
        ),
        ({"peft": LORA, "task_adapters": {"x": []}}, r"task_adapters\['x'\] must be a non-empty list"),
        ({"peft": LORA, "task_adapters": {"x": "shared"}}, r'task_adapters\[\'x\'\] is .*Write \["shared"\]'),
    ],
)
def test_task_adapter_mistakes_fail_at_construction(tiny_bert_dir, options, message):
    with pytest.raises(ConfigurationError, match=message):
        backbone(tiny_bert_dir, **options)


def test_without_peft_installed_a_peft_block_fails_naming_the_extra(tiny_bert_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)
    message = r"backbone's peft needs PEFT, which is not installed .*`uv sync --extra peft`.*`pip install 'peft>="
    with pytest.raises(ConfigurationError, match=message):
        backbone(tiny_bert_dir, peft=LORA)


def test_per_task_adapters_all_train_and_give_per_task_encodings(tiny_bert_dir):
    module = backbone(tiny_bert_dir, peft=LORA, task_adapters=PER_TASK)
    adapters = {name.split(".lora_")[1].split(".")[1] for name in trainable(module)}
    assert adapters == {"shared", "x", "y"}
    module = with_trained_looking_adapters(module)
    encoded_a = module(text(), task=["x"] * 4)["encoded_text"]
    encoded_b = module(text(), task=["y"] * 4)["encoded_text"]
    assert not torch.allclose(encoded_a, encoded_b)
    # A mixed batch: each instance gets its own task's adapters.
    mixed = module(text(), task=["x", "y", "y", "x"])
    expected = torch.stack([encoded_a[0], encoded_b[1], encoded_b[2], encoded_a[3]])
    torch.testing.assert_close(mixed["encoded_text"], expected)
    torch.testing.assert_close(mixed["token_ids"], text()["tokens"]["token_ids"])
    with pytest.raises(ValueError, match=r"task 'z', which task_adapters gives no adapters; its tasks: \['x', 'y'\]"):
        module(text(), task=["x", "z", "x", "x"])


def test_a_mixed_training_batch_trains_each_tasks_adapters_on_its_rows_only(tiny_bert_dir):
    module = with_trained_looking_adapters(backbone(tiny_bert_dir, peft=LORA, task_adapters=PER_TASK)).train()
    module(text(), task=["x", "y", "y", "x"])["encoded_text"][[1, 2]].sum().backward()
    gradients = {name: parameter.grad for name, parameter in module.named_parameters() if parameter.requires_grad}
    # Rows 1 and 2 are task y's: its adapters and the shared ones get a gradient from them, x's none.
    for name, gradient in gradients.items():
        if ".x." in name:
            assert gradient is None or gradient.abs().sum() == 0, name
        else:
            assert gradient is not None and gradient.abs().sum() > 0, name
