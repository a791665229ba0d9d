from typing import Any, Dict, Optional

from allennlp.modules.token_embedders import (
    PretrainedTransformerMismatchedEmbedder as AllenNlpPretrainedTransformerMismatchedEmbedder,
)
from allennlp.modules.token_embedders import TokenEmbedder

from allennlp_multitask.common.registration import replace_registration
from allennlp_multitask.modules.gradient_checkpointing import enable_gradient_checkpointing
from allennlp_multitask.modules.peft import SHARED_ADAPTER, add_adapters


@replace_registration(TokenEmbedder, "pretrained_transformer_mismatched")
class PretrainedTransformerMismatchedEmbedder(AllenNlpPretrainedTransformerMismatchedEmbedder):
    """
    AllenNLP's `pretrained_transformer_mismatched` token embedder (word-level embeddings from a
    transformer's wordpieces), which can also fine-tune the transformer with PEFT, as the
    `pretrained_transformer` embedder does. Without `peft`, it is AllenNLP's embedder.

    Registered as a `TokenEmbedder` with name "pretrained_transformer_mismatched", replacing AllenNLP's
    registration.

    # Parameters

    model_name : `str`
        As for AllenNLP's embedder, like all other arguments but these:
    peft : `Dict[str, Any]`, optional (default = `None`)
        As for the `pretrained_transformer` embedder: PEFT's configuration of the adapter.
    gradient_checkpointing : `bool`, optional (default = `None`)
        Recomputes the transformer's activations in the backward pass instead of keeping them: less memory
        for activations (long sequences, large batches), about a third more compute. AllenNLP's option,
        which did nothing on today's transformers; with `peft` too.
    """

    def __init__(self, model_name: str, *, peft: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        super().__init__(model_name, **kwargs)
        matched = self._matched_embedder
        if kwargs.get("gradient_checkpointing"):
            enable_gradient_checkpointing(matched.transformer_model)
        if peft is not None:
            matched.transformer_model = add_adapters(
                matched.transformer_model, peft, [SHARED_ADAPTER], "pretrained_transformer_mismatched embedder's peft"
            )
