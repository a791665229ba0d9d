from typing import Any, Dict, Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.models.heads import Head
from allennlp.modules import ConditionalRandomField, FeedForward
from allennlp.modules.conditional_random_field import allowed_transitions
from allennlp.nn import util
from allennlp.training.metrics import CategoricalAccuracy

from allennlp_multitask.training.metrics import SpanBasedF1Measure

LABEL_ENCODINGS = ("BIO", "IOB1", "BIOUL", "BMES")


@Head.register("tagger")
class TaggerHead(Head):
    """
    A sequence-labelling `Head`: one label per token of the backbone's encoding (part-of-speech tags,
    named-entity tags, chunks), predicted independently per token or, with `use_crf`, jointly by a
    conditional random field.

    Takes `encoded_text` (batch, tokens, dim) and `encoded_text_mask` (batch, tokens) from the
    backbone, and the gold labels as `tags` (batch, tokens), e.g. a `SequenceLabelField` (rename your
    field with the model's `arg_name_mapping`). Outputs `logits` (batch, tokens, labels), `mask` and
    `predicted_tags` (batch, tokens; 0 at padding), and with gold labels a `loss`: the token
    cross-entropy averaged per sentence then over the batch, or the CRF's negative log-likelihood
    averaged over the batch. `make_output_human_readable` adds `tags`: the label strings of each
    instance's tokens, trimmed to its mask.

    Metrics: `accuracy` (per token), and with a `label_encoding` the span-level `precision-overall`,
    `recall-overall` and `f1-measure-overall` of AllenNLP's `SpanBasedF1Measure` (this package's
    subclass, which also aggregates across distributed workers).

    Registered as a `Head` with name "tagger".

    # Parameters

    vocab : `Vocabulary`
        Holds the labels, in `label_namespace`.
    input_dim : `int`
        The size of each token's encoding (the backbone's output dimension).
    label_namespace : `str`, optional (default = `"labels"`)
        The vocabulary namespace of the labels.
    label_encoding : `str`, optional (default = `None`)
        The span encoding of the labels, one of "BIO", "IOB1", "BIOUL" and "BMES". When given, the
        head reports span F1 and, with `use_crf`, decodes only valid label sequences.
    use_crf : `bool`, optional (default = `False`)
        Scores whole label sequences with a `ConditionalRandomField` and decodes with Viterbi.
    feedforward : `FeedForward`, optional (default = `None`)
        Applied to every token's encoding before the label projection.
    dropout : `float`, optional (default = `0.0`)
        Dropout on the encoding, before the feedforward.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        input_dim: int,
        label_namespace: str = "labels",
        label_encoding: Optional[str] = None,
        use_crf: bool = False,
        feedforward: Optional[FeedForward] = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(vocab)
        if label_namespace not in vocab.get_namespaces():
            raise ConfigurationError(
                f"tagger's label_namespace '{label_namespace}' is not in the vocabulary; "
                f"namespaces: {sorted(vocab.get_namespaces())}."
            )
        if label_encoding is not None and label_encoding not in LABEL_ENCODINGS:
            raise ConfigurationError(
                f"tagger's label_encoding must be one of {list(LABEL_ENCODINGS)} or null, got '{label_encoding}'."
            )
        if feedforward is not None and feedforward.get_input_dim() != input_dim:
            raise ConfigurationError(
                f"tagger's feedforward takes inputs of size {feedforward.get_input_dim()}, "
                f"but input_dim is {input_dim}."
            )
        self._label_namespace = label_namespace
        self._num_labels = vocab.get_vocab_size(label_namespace)
        self._dropout = torch.nn.Dropout(dropout) if dropout else None
        self._feedforward = feedforward
        projection_input_dim = feedforward.get_output_dim() if feedforward is not None else input_dim
        self._projection = torch.nn.Linear(projection_input_dim, self._num_labels)
        self._crf: Optional[ConditionalRandomField] = None
        if use_crf:
            labels = vocab.get_index_to_token_vocabulary(label_namespace)
            constraints = allowed_transitions(label_encoding, labels) if label_encoding else None
            self._crf = ConditionalRandomField(self._num_labels, constraints=constraints)
        self._accuracy = CategoricalAccuracy()
        self._span_f1 = (
            SpanBasedF1Measure(vocab, tag_namespace=label_namespace, label_encoding=label_encoding)
            if label_encoding
            else None
        )

    def forward(  # type: ignore
        self,
        encoded_text: torch.Tensor,
        encoded_text_mask: torch.BoolTensor,
        tags: Optional[torch.LongTensor] = None,
    ) -> Dict[str, torch.Tensor]:
        encoding = encoded_text
        if self._dropout is not None:
            encoding = self._dropout(encoding)
        if self._feedforward is not None:
            encoding = self._feedforward(encoding)
        logits = self._projection(encoding)
        predicted_tags = self._decode(logits, encoded_text_mask)
        outputs = {"logits": logits, "mask": encoded_text_mask, "predicted_tags": predicted_tags}
        if tags is not None:
            outputs["loss"] = self._loss(logits, tags, encoded_text_mask)
            one_hot_predictions = torch.nn.functional.one_hot(predicted_tags, self._num_labels).float()
            self._accuracy(one_hot_predictions, tags, encoded_text_mask)
            if self._span_f1 is not None:
                self._span_f1(one_hot_predictions, tags, encoded_text_mask)
        return outputs

    def _decode(self, logits: torch.Tensor, mask: torch.BoolTensor) -> torch.Tensor:
        """The best label of every token (0 at padding): per token, or Viterbi with the CRF."""
        if self._crf is None:
            return logits.argmax(dim=-1) * mask
        # Viterbi paths come back as Python lists; they are laid out on the CPU and moved once.
        paths = self._crf.viterbi_tags(logits, mask)
        cpu_mask = mask.cpu()
        predicted = torch.zeros(cpu_mask.shape, dtype=torch.long)
        for row, (path, _score) in enumerate(paths):
            predicted[row, cpu_mask[row]] = torch.tensor(path, dtype=torch.long)
        return predicted.to(logits.device)

    def _loss(self, logits: torch.Tensor, tags: torch.LongTensor, mask: torch.BoolTensor) -> torch.Tensor:
        if self._crf is None:
            return util.sequence_cross_entropy_with_logits(logits, tags, mask)
        return -self._crf(logits, tags, mask) / logits.size(0)

    def make_output_human_readable(self, output_dict: Dict[str, Any]) -> Dict[str, Any]:
        """Adds `tags`: per instance, the label string of each token within its mask."""
        if "predicted_tags" in output_dict and "mask" in output_dict:
            labels = self.vocab.get_index_to_token_vocabulary(self._label_namespace)
            output_dict["tags"] = [
                [labels[index] for index, keep in zip(row, row_mask) if keep]
                for row, row_mask in zip(output_dict["predicted_tags"].tolist(), output_dict["mask"].tolist())
            ]
        return output_dict

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        metrics = {"accuracy": self._accuracy.get_metric(reset)}
        if self._span_f1 is not None:
            span_metrics = self._span_f1.get_metric(reset)
            metrics.update({key: value for key, value in span_metrics.items() if key.endswith("-overall")})
        return metrics
