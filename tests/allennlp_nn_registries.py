"""
The sweep's tables (see `tests/allennlp_registries.py`) for AllenNLP's smaller building blocks: activations,
attentions, initializers, regularizers, moving averages, gradient checkpointing, beam search and its parts,
multitask schedulers, data collators, vocabularies and text field embedders.
"""

from typing import Any, Dict, List

import torch
from allennlp.common import Params
from allennlp.data import Instance, TokenIndexer, Tokenizer, Vocabulary
from allennlp.data.data_loaders.data_collator import DataCollator
from allennlp.data.data_loaders.multitask_scheduler import MultiTaskScheduler
from allennlp.data.fields import TextField
from allennlp.modules import TextFieldEmbedder
from allennlp.modules.attention import Attention
from allennlp.modules.matrix_attention import MatrixAttention
from allennlp.nn import Activation, Initializer, InitializerApplicator
from allennlp.nn.beam_search import BeamSearch, Constraint, FinalSequenceScorer, Sampler
from allennlp.nn.checkpoint import CheckpointWrapper
from allennlp.nn.regularizers import Regularizer, RegularizerApplicator
from allennlp.training.moving_average import MovingAverage

from tests.allennlp_registries import (
    MASK,
    TINY_BERT,
    TRANSFORMER_TOKENIZER,
    Bench,
    Case,
    Registry,
    smooth_scores,
    typed,
)


def run_activation(bench: Bench, name: str, case: Case) -> None:
    activation = Activation.from_params(bench.params(typed(name, case)))
    assert activation(smooth_scores(2, 3)).shape == (2, 3), name


ACTIVATIONS = Registry(
    Activation,
    run_activation,
    {
        name: Case({})
        for name in [
            "elu",
            "gelu",
            "gelu_fast",
            "gelu_new",
            "hardtanh",
            "leaky_relu",
            "linear",
            "log_sigmoid",
            "mish",
            "prelu",
            "relu",
            "relu6",
            "selu",
            "sigmoid",
            "softplus",
            "softshrink",
            "softsign",
            "swish",
            "tanh",
            "tanhshrink",
        ]
    }
    | {"threshold": Case({"threshold": 0.0, "value": 0.0})},
)


def run_attention(bench: Bench, name: str, case: Case) -> None:
    attention = Attention.from_params(bench.params(typed(name, case)))
    weights = attention(smooth_scores(2, 4), smooth_scores(2, 3, 4), MASK)
    assert weights.shape == (2, 3), name


def run_matrix_attention(bench: Bench, name: str, case: Case) -> None:
    attention = MatrixAttention.from_params(bench.params(typed(name, case)))
    assert attention(smooth_scores(2, 3, 4), smooth_scores(2, 5, 4)).shape == (2, 3, 5), name


ATTENTIONS = Registry(
    Attention,
    run_attention,
    {
        "additive": Case({"vector_dim": 4, "matrix_dim": 4}),
        "bilinear": Case({"vector_dim": 4, "matrix_dim": 4}),
        "cosine": Case({}),
        "dot_product": Case({}),
        "linear": Case({"tensor_1_dim": 4, "tensor_2_dim": 4}),
        "scaled_dot_product": Case({}),
    },
)

MATRIX_ATTENTIONS = Registry(
    MatrixAttention,
    run_matrix_attention,
    {
        "bilinear": Case({"matrix_1_dim": 4, "matrix_2_dim": 4}),
        "cosine": Case({}),
        "dot_product": Case({}),
        "linear": Case({"tensor_1_dim": 4, "tensor_2_dim": 4}),
        "scaled_dot_product": Case({}),
    },
)


def run_initializer(bench: Bench, name: str, case: Case) -> None:
    # As a model's `initializer` key applies it: to the parameters whose names match a regex.
    make_module, regex = case.inputs or (lambda: torch.nn.Linear(4, 4), "weight")
    module = make_module()
    before = {key: value.detach().clone() for key, value in module.named_parameters()}
    applicator = InitializerApplicator.from_params(Params({"regexes": [[regex, bench.resolve(typed(name, case))]]}))
    applicator(module)
    changed = [key for key, value in module.named_parameters() if not torch.equal(before[key], value)]
    assert changed and all(torch.isfinite(value).all() for value in module.parameters()), name


INITIALIZERS = Registry(
    Initializer,
    run_initializer,
    {
        "block_orthogonal": Case({"split_sizes": [2, 2]}),
        "constant": Case({"val": 0.5}),
        "dirac": Case({}, (lambda: torch.nn.Conv1d(4, 4, 3), "weight")),
        "eye": Case({}),
        "kaiming_normal": Case({}),
        "kaiming_uniform": Case({}),
        "lstm_hidden_bias": Case({}, (lambda: torch.nn.LSTM(4, 2), "bias_hh")),
        "normal": Case({}),
        "orthogonal": Case({}),
        "pretrained": Case({"weights_file_path": "linear_weights.th"}),
        "sparse": Case({"sparsity": 0.5}),
        "uniform": Case({}),
        "uniform_unit_scaling": Case({}),
        "xavier_normal": Case({}),
        "xavier_uniform": Case({}),
        "zero": Case({}, (lambda: torch.nn.Linear(4, 4), "bias")),
    },
)


def run_regularizer(bench: Bench, name: str, case: Case) -> None:
    # As a model's `regularizer` key applies it.
    applicator = RegularizerApplicator.from_params(Params({"regexes": [["weight", typed(name, case)]]}))
    penalty = applicator(torch.nn.Linear(4, 4))
    penalty.backward()
    assert penalty > 0, name


REGULARIZERS = Registry(Regularizer, run_regularizer, {"l1": Case({}), "l2": Case({})})


def run_moving_average(bench: Bench, name: str, case: Case) -> None:
    layer = torch.nn.Linear(4, 4)
    average = MovingAverage.from_params(bench.params(typed(name, case)), parameters=list(layer.named_parameters()))
    with torch.no_grad():
        layer.weight.add_(1.0)
    average.apply(num_updates=1)
    average.assign_average_value()
    average.restore()


MOVING_AVERAGES = Registry(MovingAverage, run_moving_average, {"exponential": Case({})})


def run_checkpoint_wrapper(bench: Bench, name: str, case: Case) -> None:
    wrapper = CheckpointWrapper.from_params(bench.params(typed(name, case)))
    layer = torch.nn.Linear(4, 4)
    wrapper.wrap_module(layer)(smooth_scores(2, 4).requires_grad_()).sum().backward()
    assert layer.weight.grad is not None, name


CHECKPOINT_WRAPPERS = Registry(
    CheckpointWrapper, run_checkpoint_wrapper, {"fairscale": Case({"offload_to_cpu": False}), "torch": Case({})}
)


END, CLASSES = 4, 5


def next_log_probabilities(last_predictions: torch.Tensor, state: Dict[str, torch.Tensor], step: int) -> Any:
    """A fixed model for beam search: log probabilities over `CLASSES` that depend on the last prediction."""
    scores = torch.arange(CLASSES, dtype=torch.float).roll(step) + last_predictions.unsqueeze(1).float()
    return scores.log_softmax(-1), state


def run_beam_search(bench: Bench, config: Dict[str, Any]) -> None:
    search = BeamSearch.from_params(
        bench.params({"end_index": END, "max_steps": 4, "beam_size": 2, "per_node_beam_size": 2, **config})
    )
    predictions, log_probabilities = search.search(torch.zeros(3, dtype=torch.long), {}, next_log_probabilities)
    assert predictions.shape[:2] == (3, 2) and torch.isfinite(log_probabilities).all()


def run_beam_search_with(key: str) -> Any:
    """A registry's `run`: beam search with the built component as its `key` (a list of one for constraints)."""

    def run(bench: Bench, name: str, case: Case) -> None:
        component = typed(name, case)
        run_beam_search(bench, {key: [component] if key == "constraints" else component})

    return run


BEAM_SEARCHES = Registry(
    BeamSearch, lambda bench, name, case: run_beam_search(bench, case.config), {"beam_search": Case({})}
)
BEAM_SAMPLERS = Registry(
    Sampler,
    run_beam_search_with("sampler"),
    {
        "deterministic": Case({}),
        "gumbel": Case({}),
        "multinomial": Case({}),
        "top-k": Case({"k": 2}),
        "top-p": Case({}),
    },
)
FINAL_SEQUENCE_SCORERS = Registry(
    FinalSequenceScorer,
    run_beam_search_with("final_sequence_scorer"),
    {"length-normalized-sequence-log-prob": Case({}), "sequence-log-prob": Case({})},
)
CONSTRAINTS = Registry(
    Constraint, run_beam_search_with("constraints"), {"repeated-ngram-blocking": Case({"ngram_size": 2})}
)


def run_multitask_scheduler(bench: Bench, name: str, case: Case) -> None:
    instances = bench.instances()
    scheduler = MultiTaskScheduler.from_params(bench.params(typed(name, case)))
    batches = list(scheduler.batch_instances({"a": instances, "b": instances * 2}))
    assert sum(len(batch) for batch in batches) == 6, name
    assert scheduler.count_batches({"a": 2, "b": 4}) == len(batches), name


MULTITASK_SCHEDULERS = Registry(
    MultiTaskScheduler,
    run_multitask_scheduler,
    {"homogeneous_roundrobin": Case({"batch_size": 2}), "roundrobin": Case({"batch_size": 2})},
)


def run_data_collator(bench: Bench, name: str, case: Case) -> None:
    collator = DataCollator.from_params(bench.params(typed(name, case)))
    instances = case.inputs(bench) if case.inputs else bench.instances()
    vocab = Vocabulary.from_instances(instances)
    for instance in instances:
        instance.index_fields(vocab)
    assert collator(instances), name


def transformer_instances(bench: Bench) -> List[Instance]:
    indexer = TokenIndexer.from_params(bench.params({"type": "pretrained_transformer", "model_name": TINY_BERT}))
    tokens = Tokenizer.from_params(bench.params(TRANSFORMER_TOKENIZER)).tokenize("the film was great")
    return [Instance({"source": TextField(tokens, {"tokens": indexer})}) for _ in range(2)]


DATA_COLLATORS = Registry(
    DataCollator,
    run_data_collator,
    {
        "allennlp": Case({}),
        "language_model": Case({"model_name": TINY_BERT}, transformer_instances),
    },
)


def run_vocabulary(bench: Bench, name: str, case: Case) -> None:
    vocab = Vocabulary.from_params(bench.params(typed(name, case)), instances=bench.instances())
    assert vocab.get_vocab_size("tokens") > 0 or name == "empty", name


VOCABULARIES = Registry(
    Vocabulary,
    run_vocabulary,
    {
        "empty": Case({}),
        "extend": Case({"directory": "vocabulary"}),
        "from_files": Case({"directory": "vocabulary"}),
        "from_instances": Case({}),
        "from_pretrained_transformer": Case({"model_name": TINY_BERT}),
        "from_pretrained_transformer_and_instances": Case({"transformers": {"tokens": TINY_BERT}}),
    },
)


def run_text_field_embedder(bench: Bench, name: str, case: Case) -> None:
    vocab, tensors = bench.indexed_text({"type": "single_id"})
    embedder = TextFieldEmbedder.from_params(bench.params(typed(name, case)), vocab=vocab)
    assert embedder({"x": tensors}).shape[:2] == (2, 4), name


TEXT_FIELD_EMBEDDERS = Registry(
    TextFieldEmbedder,
    run_text_field_embedder,
    {"basic": Case({"token_embedders": {"x": {"type": "embedding", "embedding_dim": 3}}})},
)

NN_REGISTRIES = (
    ACTIVATIONS,
    ATTENTIONS,
    MATRIX_ATTENTIONS,
    INITIALIZERS,
    REGULARIZERS,
    MOVING_AVERAGES,
    CHECKPOINT_WRAPPERS,
    BEAM_SEARCHES,
    BEAM_SAMPLERS,
    FINAL_SEQUENCE_SCORERS,
    CONSTRAINTS,
    MULTITASK_SCHEDULERS,
    DATA_COLLATORS,
    VOCABULARIES,
    TEXT_FIELD_EMBEDDERS,
)
