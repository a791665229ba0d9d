from typing import Any, Dict, Optional

import torch
from allennlp.data import Vocabulary
from allennlp.models.heads import Head
from allennlp.modules import FeedForward, Seq2VecEncoder

from allennlp_multitask.training.metrics import PearsonCorrelation, SpearmanCorrelation


@Head.register("regression")
class RegressionHead(Head):
    """
    A `Head` that predicts one real number per instance (a similarity or quality score, a rating):
    pools the backbone's encoding into a vector, runs an optional feedforward, and projects to a
    scalar.

    Takes `encoded_text` (batch, tokens, dim) and `encoded_text_mask` (batch, tokens) from the
    backbone, and the gold value as `label` (batch,) or (batch, 1), e.g. a `TensorField` (rename your
    field with the model's `arg_name_mapping`). Outputs `prediction` (batch,) and, with gold values,
    a mean-squared-error `loss`. `make_output_human_readable` turns `prediction` into Python floats.

    Metrics: `pearson` and `spearman`, the correlations between predictions and gold values over the
    epoch (AllenNLP's `PearsonCorrelation` and `SpearmanCorrelation`, as this package's subclasses, which
    also aggregate across distributed workers).

    Registered as a `Head` with name "regression".

    # Parameters

    vocab : `Vocabulary`
        Not used; given by the model like to every head.
    seq2vec_encoder : `Seq2VecEncoder`
        Pools the encoded tokens into one vector per instance (e.g. `boe`, `cls_pooler`).
    feedforward : `FeedForward`, optional (default = `None`)
        Applied to the pooled vector before the projection to a scalar.
    dropout : `float`, optional (default = `0.0`)
        Dropout on the pooled vector, before the feedforward.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        seq2vec_encoder: Seq2VecEncoder,
        feedforward: Optional[FeedForward] = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(vocab)
        self._seq2vec_encoder = seq2vec_encoder
        self._feedforward = feedforward
        self._dropout = torch.nn.Dropout(dropout) if dropout else None
        projection_input_dim = (
            feedforward.get_output_dim() if feedforward is not None else seq2vec_encoder.get_output_dim()
        )
        self._projection = torch.nn.Linear(projection_input_dim, 1)
        self._pearson = PearsonCorrelation()
        self._spearman = SpearmanCorrelation()

    def forward(  # type: ignore
        self,
        encoded_text: torch.Tensor,
        encoded_text_mask: torch.BoolTensor,
        label: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        encoding = self._seq2vec_encoder(encoded_text, mask=encoded_text_mask)
        if self._dropout is not None:
            encoding = self._dropout(encoding)
        if self._feedforward is not None:
            encoding = self._feedforward(encoding)
        prediction = self._projection(encoding).squeeze(-1)
        outputs = {"prediction": prediction}
        if label is not None:
            if label.numel() != prediction.numel():
                raise ValueError(
                    f"regression head got labels of shape {tuple(label.shape)} for {prediction.numel()} "
                    "instances; it needs one value per instance."
                )
            target = label.to(prediction.dtype).reshape(prediction.shape)
            outputs["loss"] = torch.nn.functional.mse_loss(prediction, target)
            self._pearson(prediction, target)
            self._spearman(prediction, target)
        return outputs

    def make_output_human_readable(self, output_dict: Dict[str, Any]) -> Dict[str, Any]:
        """Turns `prediction` into a list of Python floats, one per instance."""
        if isinstance(output_dict.get("prediction"), torch.Tensor):
            output_dict["prediction"] = output_dict["prediction"].tolist()
        return output_dict

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        return {"pearson": self._pearson.get_metric(reset), "spearman": self._spearman.get_metric(reset)}
