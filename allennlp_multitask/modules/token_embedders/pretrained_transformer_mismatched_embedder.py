from typing import Any, Dict, Optional

from allennlp.modules.token_embedders import (
    PretrainedTransformerMismatchedEmbedder as AllenNlpPretrainedTransformerMismatchedEmbedder,
)
from allennlp.modules.token_embedders import TokenEmbedder

from allennlp_multitask.common.registration import replace_registration
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
        As for AllenNLP's embedder, like all other arguments but this one:
    peft : `Dict[str, Any]`, optional (default = `None`)
        As for the `pretrained_transformer` embedder: PEFT's configuration of the adapter.
    """

    def __init__(self, model_name: str, *, peft: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        super().__init__(model_name, **kwargs)
        if peft is not None:
            matched = self._matched_embedder
            matched.transformer_model = add_adapters(
                matched.transformer_model, peft, [SHARED_ADAPTER], "pretrained_transformer_mismatched embedder's peft"
            )
