from typing import Any, Dict, Optional

from allennlp.modules.token_embedders import PretrainedTransformerEmbedder as AllenNlpPretrainedTransformerEmbedder
from allennlp.modules.token_embedders import TokenEmbedder

from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.modules.gradient_checkpointing import enable_gradient_checkpointing
from allennlp_multitask.modules.peft import SHARED_ADAPTER, add_adapters


@replace_registration(TokenEmbedder, "pretrained_transformer")
class PretrainedTransformerEmbedder(AllenNlpPretrainedTransformerEmbedder):
    """
    AllenNLP's `pretrained_transformer` token embedder, which can also fine-tune the transformer with
    PEFT: a `peft` block (`{"type": "lora", "r": 8, ...}`, see `allennlp_multitask.modules.peft`) adds one
    adapter to the frozen transformer, and only it trains. Without `peft`, it is AllenNLP's embedder.

    Registered as a `TokenEmbedder` with name "pretrained_transformer", replacing AllenNLP's registration.

    # Parameters

    model_name : `str`
        As for AllenNLP's embedder, like all other arguments but these:
    peft : `Dict[str, Any]`, optional (default = `None`)
        PEFT's configuration of the adapter, by method (`{"type": "lora", "r": 8, "lora_alpha": 16}`). The
        transformer's own weights are then frozen, whatever `train_parameters` says.
    gradient_checkpointing : `bool`, optional (default = `None`)
        Recomputes the transformer's activations in the backward pass instead of keeping them: less memory
        for activations (long sequences, large batches), about a third more compute. AllenNLP's option,
        which did nothing on today's transformers; with `peft` too.
    """

    def __init__(self, model_name: str, *, peft: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        super().__init__(model_name, **kwargs)
        if kwargs.get("gradient_checkpointing"):
            enable_gradient_checkpointing(self.transformer_model)
        if peft is not None:
            self.transformer_model = add_adapters(
                self.transformer_model, peft, [SHARED_ADAPTER], "pretrained_transformer embedder's peft"
            )
