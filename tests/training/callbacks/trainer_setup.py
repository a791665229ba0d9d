"""
Small multitask models, instances for them, and AllenNLP's `GradientDescentTrainer` training them, for the
Jacobian-descent tests.
"""

from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from allennlp.data import Instance, Token, Vocabulary
from allennlp.data.data_loaders import SimpleDataLoader
from allennlp.data.fields import LabelField, MetadataField, TextField
from allennlp.data.token_indexers import SingleIdTokenIndexer
from allennlp.models import Model
from allennlp.models.heads import Head
from allennlp.nn.parallel import DdpWrappedModel
from allennlp.training import GradientDescentTrainer

from allennlp_multitask import MultiTaskModel
from allennlp_multitask.training.callbacks import JacobianDescentCallback
from tests.models.small_model import backbone, classifier, small_vocab


def instances(tasks: Sequence[str], tokens: Sequence[str] = ("w1", "w2", "w3")) -> List[Instance]:
    """One instance per entry of `tasks`: the text `tokens`, label "neg" or "pos" in turn, and its task."""
    indexers = {"tokens": SingleIdTokenIndexer()}
    return [
        Instance(
            {
                "text": TextField([Token(token) for token in tokens], indexers),
                "label": LabelField(["neg", "pos"][position % 2]),
                "task": MetadataField(task),
            }
        )
        for position, task in enumerate(tasks)
    ]


class DirectionHead(Head):
    """
    A head whose loss is the mean of its rows' encodings times a fixed `direction`: its gradient on the
    encoding is `direction`, whatever the batch, so tests can give heads gradients that conflict.
    """

    def __init__(self, vocab: Vocabulary, direction: Sequence[float]) -> None:
        super().__init__(vocab)
        self.register_buffer("direction", torch.tensor(direction))

    def forward(self, encoded_text: torch.Tensor) -> Dict[str, torch.Tensor]:  # type: ignore
        return {"loss": encoded_text.mean(dim=(0, 1)) @ self.direction}


def direction_model(directions: Dict[str, Sequence[float]], **options: Any) -> MultiTaskModel:
    """Direction heads (directions of `DIM` numbers) on an embedding backbone, the same each time."""
    torch.manual_seed(0)
    vocab = small_vocab()
    heads = {head: DirectionHead(vocab, direction) for head, direction in directions.items()}
    return MultiTaskModel(vocab, backbone(vocab), heads, **options)


def classifier_model(heads: Sequence[str] = ("a", "b"), **options: Any) -> MultiTaskModel:
    """Classifier heads on an embedding backbone, the same each time."""
    torch.manual_seed(0)
    vocab = small_vocab()
    return MultiTaskModel(vocab, backbone(vocab), {head: classifier(vocab) for head in heads}, **options)


def train(
    model: Model,
    batches: List[Instance],
    *,
    batch_size: int,
    aggregator: Optional[Union[str, Dict[str, Any]]] = None,
    level: str = "parameters",
    lr: float = 1.0,
    ddp_wrapped_model: Optional[DdpWrappedModel] = None,
    grad_scaler: Optional[torch.amp.GradScaler] = None,
    **trainer_options: Any,
) -> Dict[str, Any]:
    """
    Trains `model` for one epoch over `batches` (in order) with plain SGD, through the `jacobian_descent`
    callback with `aggregator` at `level` (plain training when `None`); returns the trainer's metrics.
    A `grad_scaler` is the trainer's, as `use_amp` in float16 makes it on CUDA (there, CUDA's scaler).
    """
    callbacks = [] if aggregator is None else [JacobianDescentCallback("unused", aggregator, level=level)]
    loader = SimpleDataLoader(batches, batch_size, vocab=model.vocab)
    trainer = GradientDescentTrainer(
        model,
        torch.optim.SGD(model.parameters(), lr=lr),
        loader,
        num_epochs=1,
        callbacks=callbacks,
        ddp_wrapped_model=ddp_wrapped_model,
        **trainer_options,
    )
    trainer._scaler = grad_scaler
    return trainer.train()
