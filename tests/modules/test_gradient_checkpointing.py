"""
`gradient_checkpointing` of the `pretrained_transformer` backbone and embedders, with and without PEFT
adapters: in training, each transformer layer runs again in the backward pass, and the gradients are those
of a run without it. (AllenNLP's embedders' option set a configuration key today's transformers ignore.)
"""

from typing import Any, Callable, Dict, List, Tuple

import pytest
import torch
from allennlp.common import Params
from allennlp.data import Vocabulary
from allennlp.modules import Backbone, TokenEmbedder

from tests.commands.peft_runs import LORA

TOKEN_IDS = torch.tensor([[2, 5, 6, 7, 3], [2, 8, 9, 3, 0]])
MASK = TOKEN_IDS != 0


def backbone_output(component: torch.nn.Module) -> torch.Tensor:
    text = {"tokens": {"token_ids": TOKEN_IDS, "mask": MASK, "type_ids": torch.zeros_like(TOKEN_IDS)}}
    return component(text)["encoded_text"]


def embedder_output(component: torch.nn.Module) -> torch.Tensor:
    return component(TOKEN_IDS, MASK)


def mismatched_embedder_output(component: torch.nn.Module) -> torch.Tensor:
    offsets = torch.tensor([[[1, 1], [2, 3]], [[1, 2], [0, 0]]])
    return component(TOKEN_IDS, MASK[:, :2] & torch.tensor([[True, True], [True, False]]), offsets, MASK)


# (registry, name, how to run it)
COMPONENTS: List[Tuple[Any, str, Callable[[torch.nn.Module], torch.Tensor]]] = [
    (Backbone, "pretrained_transformer", backbone_output),
    (TokenEmbedder, "pretrained_transformer", embedder_output),
    (TokenEmbedder, "pretrained_transformer_mismatched", mismatched_embedder_output),
]


def built(registry: Any, name: str, model_dir: Any, **options: Any) -> torch.nn.Module:
    torch.manual_seed(0)
    params: Dict[str, Any] = {"type": name, "model_name": str(model_dir), **options}
    extras = {"vocab": Vocabulary()} if registry is Backbone else {}
    return registry.from_params(Params(params), **extras).train()


def layer_runs_and_gradients(component: torch.nn.Module, run: Callable) -> Tuple[List[int], Dict[str, torch.Tensor]]:
    """
    How many times each transformer layer's attention ran in a forward and backward pass (a checkpointed
    layer's hooks, from transformers 5, are outside the checkpoint: its parts' are inside), and the gradients.
    """
    layers = [module for module in component.modules() if type(module).__name__ == "BertAttention"]
    runs = [0] * len(layers)
    for index, layer in enumerate(layers):
        layer.register_forward_hook(lambda *_, index=index: runs.__setitem__(index, runs[index] + 1))
    run(component).pow(2).sum().backward()
    return runs, {name: p.grad for name, p in component.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("peft", [None, LORA], ids=["fine-tuned", "lora"])
@pytest.mark.parametrize(("registry", "name", "run"), COMPONENTS, ids=[f"{r.__name__}-{n}" for r, n, _ in COMPONENTS])
def test_gradient_checkpointing_recomputes_each_layer_with_the_same_gradients(registry, name, run, peft, tiny_bert_dir):
    options = {} if peft is None else {"peft": peft}
    runs, gradients = layer_runs_and_gradients(built(registry, name, tiny_bert_dir, **options), run)
    checkpointed_runs, checkpointed = layer_runs_and_gradients(
        built(registry, name, tiny_bert_dir, gradient_checkpointing=True, **options), run
    )
    assert runs and all(count == 1 for count in runs)
    assert checkpointed_runs == [2] * len(runs)
    assert gradients and gradients.keys() == checkpointed.keys()
    for parameter, gradient in gradients.items():
        assert torch.allclose(checkpointed[parameter], gradient, atol=1e-6), parameter
