from typing import Dict, Optional

import torch
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.modules import Backbone, Seq2SeqEncoder, TextFieldEmbedder
from allennlp.nn import util


@Backbone.register("embedder")
class EmbedderBackbone(Backbone):
    """
    A `Backbone` built from a `TextFieldEmbedder` and an optional `Seq2SeqEncoder`: any embedding
    AllenNLP can configure (word embeddings, character encoders, a transformer loaded from a local
    directory), so multitask models train without network access.

    Following AllenNLP's backbone convention, it encodes an input named `text` into `encoded_text`
    (batch, tokens, dim) and `encoded_text_mask` (batch, tokens). A batch of only empty texts, on
    which AllenNLP's encoders fail, gets an encoding with no tokens.

    Registered as a `Backbone` with name "embedder".

    # Parameters

    vocab : `Vocabulary`
        Given by the model; not used for encoding.
    text_field_embedder : `TextFieldEmbedder`
        Embeds the tokens of `text`.
    encoder : `Seq2SeqEncoder`, optional (default = `None`)
        Contextualises the embeddings; without it the embeddings are the encoding.
    dropout : `float`, optional (default = `0.0`)
        Dropout on the encoding.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        encoder: Optional[Seq2SeqEncoder] = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self._vocab = vocab
        self._text_field_embedder = text_field_embedder
        self._encoder = encoder
        self._dropout = torch.nn.Dropout(dropout) if dropout else None

    def get_output_dim(self) -> int:
        """The size of each token's encoding."""
        if self._encoder is not None:
            return self._encoder.get_output_dim()
        return self._text_field_embedder.get_output_dim()

    def forward(self, text: TextFieldTensors) -> Dict[str, torch.Tensor]:  # type: ignore
        mask = util.get_text_field_mask(text)
        encoded = self._text_field_embedder(text)
        if self._encoder is not None:
            if mask.size(1) == 0:
                # Only empty texts: nothing to encode (AllenNLP's encoders fail on zero timesteps).
                encoded = encoded.new_zeros(encoded.size(0), 0, self._encoder.get_output_dim())
            else:
                encoded = self._encoder(encoded, mask)
        if self._dropout is not None:
            encoded = self._dropout(encoded)
        return {"encoded_text": encoded, "encoded_text_mask": mask}
