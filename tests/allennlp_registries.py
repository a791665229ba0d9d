"""
The sweep of AllenNLP's registries (`tests/test_allennlp_registries.py`): for each swept registry, a table of every
registered name with a minimal configuration, built as a config builds it (`Base.from_params(Params(config))`)
and run once by the registry's `run` (an optimizer step, a forward pass, a batch, a read), or `Excluded` with
the reason it cannot be run here. Configurations name the tiny random-init BERT as `TINY_BERT`, and files the
bench writes by their names (`Bench.files`).
"""

import copy
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Type, Union

import torch
from allennlp.common import Params, Registrable
from allennlp.data import (
    Batch,
    DataLoader,
    DatasetReader,
    Instance,
    Token,
    TokenIndexer,
    Tokenizer,
    Vocabulary,
)
from allennlp.data.data_loaders import SimpleDataLoader
from allennlp.data.data_loaders.multitask_epoch_sampler import MultiTaskEpochSampler
from allennlp.data.fields import LabelField, TextField
from allennlp.data.samplers import BatchSampler
from allennlp.models import Model
from allennlp.models.heads import Head
from allennlp.modules import Backbone, Seq2SeqEncoder, Seq2VecEncoder, TokenEmbedder
from allennlp.modules.token_embedders import EmptyEmbedder
from allennlp.predictors import Predictor
from allennlp.training import Trainer
from allennlp.training.callbacks import TrainerCallback
from allennlp.training.learning_rate_schedulers import LearningRateScheduler
from allennlp.training.metrics import Metric
from allennlp.training.metrics.evalb_bracketing_scorer import DEFAULT_EVALB_DIR
from allennlp.training.momentum_schedulers import MomentumScheduler
from allennlp.training.optimizers import Optimizer
from nltk import Tree

TINY_BERT = "TINY_BERT"
SPACY_MODEL = (
    "builds a spaCy pipeline (en_core_web_sm unless another is named), which spaCy downloads on first use: "
    "no spaCy model is installed here, and no network"
)

WORDS = ["the", "film", "was", "great"]


@dataclass
class Bench:
    """What the components are built from and run on: a vocabulary, small files, the tiny BERT."""

    directory: Path
    tiny_bert: Path
    files: Dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lines = {
            "text.jsonl": "\n".join(
                json.dumps({"text": text, "label": label})
                for text, label in [("the film was great", "pos"), ("the film was awful", "neg")] * 2
            ),
            "tagged.txt": "the###DET film###NOUN was###VERB great###ADJ\nthe###DET film###NOUN\n",
            "conll2003.txt": "-DOCSTART- -X- -X- O\n\nthe DT B-NP O\nfilm NN I-NP B-MISC\n\nwas VBD B-VP O\n",
            "conll_tags.txt": "the DT O\nfilm NN B-X\n\nwas VBD O\n",
            "babi.txt": "1 Mary went to the kitchen.\n2 Where is Mary?\tkitchen\t1\n",
            # Fairness's seed words: a list of words, or of pairs.
            "seed_words.json": json.dumps(["the", "film", "great"]),
            "seed_word_pairs.json": json.dumps([["the", "film"], ["was", "great"]]),
        }
        for name, text in lines.items():
            self.files[name] = self.directory / name
            self.files[name].write_text(text)
        self.files["linear_weights.th"] = self.directory / "linear_weights.th"
        torch.save(torch.nn.Linear(4, 4).state_dict(), self.files["linear_weights.th"])
        self.files["vocabulary"] = self.directory / "vocabulary"
        self.vocabulary().save_to_files(str(self.files["vocabulary"]))
        # EVALB's sources, for the evalb metric to compile here rather than in the installed package.
        self.files["EVALB"] = shutil.copytree(DEFAULT_EVALB_DIR, self.directory / "EVALB")
        self.files["shards"] = self.directory / "shards"
        self.files["shards"].mkdir()
        for shard in range(2):
            (self.files["shards"] / f"{shard}.jsonl").write_text(lines["text.jsonl"])

    def resolve(self, config: Any) -> Any:
        """`config` with `TINY_BERT` and file names replaced by their paths."""
        if isinstance(config, dict):
            return {key: self.resolve(value) for key, value in config.items()}
        if isinstance(config, list):
            return [self.resolve(value) for value in config]
        if config == TINY_BERT:
            return str(self.tiny_bert)
        if isinstance(config, str) and config in self.files:
            return str(self.files[config])
        return config

    def params(self, config: Dict[str, Any]) -> Params:
        return Params(self.resolve(copy.deepcopy(config)))

    def vocabulary(self) -> Vocabulary:
        vocab = Vocabulary(non_padded_namespaces=["labels", "tags"])
        vocab.add_tokens_to_namespace(WORDS, "tokens")
        vocab.add_tokens_to_namespace(["pos", "neg"], "labels")
        vocab.add_tokens_to_namespace(["O", "B-X", "I-X"], "tags")
        return vocab

    def indexed_text(
        self, indexer: Dict[str, Any], tokenizer: Optional[Dict[str, Any]] = None
    ) -> Tuple[Vocabulary, Dict[str, torch.Tensor]]:
        """Two sentences tokenized and indexed as `indexer` and `tokenizer` configs say; the tensors of the batch."""
        built_tokenizer = Tokenizer.from_params(self.params(tokenizer or {"type": "whitespace"}))
        token_indexer = TokenIndexer.from_params(self.params(indexer))
        instances = [
            Instance({"text": TextField(built_tokenizer.tokenize(text), {"x": token_indexer})})
            for text in ["the film was great", "the film"]
        ]
        vocab = Vocabulary.from_instances(instances)
        batch = Batch(instances)
        batch.index_instances(vocab)
        return vocab, batch.as_tensor_dict()["text"]["x"]

    def instances(self) -> List[Instance]:
        indexers = {"tokens": TokenIndexer.by_name("single_id")()}
        return [
            Instance({"tokens": TextField([Token(word) for word in words], indexers), "label": LabelField(label)})
            for words, label in [(WORDS, "pos"), (WORDS[:2], "neg")]
        ]


WORD_EMBEDDER = {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 4}}}
BOE = {"type": "boe", "embedding_dim": 4}
CLASSIFIER = {"type": "basic_classifier", "text_field_embedder": WORD_EMBEDDER, "seq2vec_encoder": BOE}


# Fairness: seed words (`seed_words.json`, `seed_word_pairs.json`) tokenized as the bench's vocabulary has them.
WHITESPACE = {"type": "whitespace"}
SEED_VOCABULARY = {"type": "from_files", "directory": "vocabulary"}
SEEDS = {"seed_words_file": "seed_words.json", "tokenizer": WHITESPACE, "direction_vocab": SEED_VOCABULARY}
PCA = {"type": "pca", **SEEDS}
# The classifier, with an adversary recovering the words' bias direction from its two class probabilities.
ADVERSARY = {
    "type": "feedforward_regression_adversary",
    "feedforward": {"input_dim": 2, "num_layers": 1, "hidden_dims": 1, "activations": "linear"},
}
ADVERSARIAL_CLASSIFIER = {
    "type": "adversarial_bias_mitigator",
    "predictor": CLASSIFIER,
    "adversary": ADVERSARY,
    "bias_direction": PCA,
    "predictor_output_key": "probs",
}


def classifier_model(vocab: Vocabulary) -> Model:
    return Model.from_params(Params(copy.deepcopy(CLASSIFIER)), vocab=vocab)


def tiny_network() -> torch.nn.Module:
    return torch.nn.ModuleDict({"linear": torch.nn.Linear(4, 2), "embedding": torch.nn.Embedding(6, 4)})


def network_loss(network: torch.nn.Module) -> torch.Tensor:
    words = network["embedding"](torch.tensor([[1, 2, 3], [4, 5, 0]]))
    return network["linear"](words).pow(2).sum()


def sparse_network() -> torch.nn.Module:
    return torch.nn.ModuleDict({"embedding": torch.nn.Embedding(6, 4, sparse=True)})


def sparse_loss(network: torch.nn.Module) -> torch.Tensor:
    return network["embedding"](torch.tensor([1, 2, 3])).pow(2).sum()


@dataclass(frozen=True)
class Case:
    """A registered name's minimal configuration, and what its registry's `run` needs besides (`inputs`)."""

    config: Dict[str, Any]
    inputs: Any = None


@dataclass(frozen=True)
class Excluded:
    """A registered name the sweep cannot build or run on this machine, because `reason`."""

    reason: str


Entry = Union[Case, Excluded]


@dataclass(frozen=True)
class Registry:
    """A swept registry: its base class, how a built component runs once, and an entry per registered name."""

    base: Type[Registrable]
    run: Callable[[Bench, str, Case], None]
    entries: Mapping[str, Entry]


def typed(name: str, case: Case) -> Dict[str, Any]:
    """The case's config naming the component: what a config file holds."""
    return {"type": name, **case.config}


# Optimizers: one step on a tiny network's gradients changes its parameters.


def run_optimizer(bench: Bench, name: str, case: Case) -> None:
    make_network, loss = case.inputs or (tiny_network, network_loss)
    network = make_network()
    optimizer = Optimizer.from_params(
        bench.params(typed(name, case)), model_parameters=list(network.named_parameters())
    )
    before = [parameter.detach().clone() for parameter in network.parameters()]
    loss(network).backward()
    optimizer.step()
    assert any(not torch.equal(old, new) for old, new in zip(before, network.parameters())), name


OPTIMIZERS = Registry(
    Optimizer,
    run_optimizer,
    {
        **{
            name: Case({"lr": 0.1})
            for name in ["adam", "adamw", "adamax", "adagrad", "adadelta", "sgd", "rmsprop", "averaged_sgd"]
        },
        "huggingface_adamw": Case({"lr": 0.1}),
        "huggingface_adafactor": Case({}),
        "dense_sparse_adam": Case({}, (sparse_network, sparse_loss)),
        "sparse_adam": Case({}, (sparse_network, sparse_loss)),
        "multi": Case(
            {
                "optimizers": {"default": {"type": "sgd", "lr": 0.1}, "words": {"type": "adam"}},
                "parameter_groups": [[["^embedding"], {"optimizer_name": "words"}]],
            }
        ),
    },
)


# Learning-rate and momentum schedulers: three epochs of two batches, a validation metric after each epoch.

EPOCHS, STEPS_PER_EPOCH = 3, 2


def run_schedule(scheduler: Any, optimizer: torch.optim.Optimizer, value: str) -> List[float]:
    """The optimizer's `value` (lr, momentum) after each epoch."""
    values = []
    for epoch in range(EPOCHS):
        for _ in range(STEPS_PER_EPOCH):
            optimizer.step()
            scheduler.step_batch()
        scheduler.step(1.0 / (epoch + 1))
        values.append(optimizer.param_groups[0][value])
    return values


def scheduled_optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD(torch.nn.Linear(4, 2).parameters(), lr=0.1, momentum=0.9)


def run_learning_rate_scheduler(bench: Bench, name: str, case: Case) -> None:
    optimizer = scheduled_optimizer()
    scheduler = LearningRateScheduler.from_params(
        bench.params(typed(name, case)),
        optimizer=optimizer,
        num_epochs=EPOCHS,
        num_steps_per_epoch=STEPS_PER_EPOCH,
    )
    assert all(value >= 0.0 for value in run_schedule(scheduler, optimizer, "lr")), name


def run_momentum_scheduler(bench: Bench, name: str, case: Case) -> None:
    optimizer = scheduled_optimizer()
    scheduler = MomentumScheduler.from_params(bench.params(typed(name, case)), optimizer=optimizer)
    assert all(value > 0.0 for value in run_schedule(scheduler, optimizer, "momentum")), name


LEARNING_RATE_SCHEDULERS = Registry(
    LearningRateScheduler,
    run_learning_rate_scheduler,
    {
        "combined": Case({"schedulers": [[2, {"type": "constant"}], [4, {"type": "exponential", "gamma": 0.5}]]}),
        "constant": Case({}),
        "constant_with_warmup": Case({"num_warmup_steps": 2}),
        "cosine": Case({"t_initial": 2}),
        "cosine_hard_restarts_with_warmup": Case({"num_warmup_steps": 2, "num_training_steps": 6}),
        "cosine_with_warmup": Case({"num_warmup_steps": 2, "num_training_steps": 6}),
        "exponential": Case({"gamma": 0.5}),
        "linear_with_warmup": Case({"warmup_steps": 2}),
        "multi_step": Case({"milestones": [1, 2]}),
        "noam": Case({"model_size": 4, "warmup_steps": 2}),
        "polynomial_decay": Case({"warmup_steps": 1}),
        "reduce_on_plateau": Case({"patience": 0}),
        "slanted_triangular": Case({}),
        "step": Case({"step_size": 1}),
    },
)

MOMENTUM_SCHEDULERS = Registry(
    MomentumScheduler,
    run_momentum_scheduler,
    {"inverted_triangular": Case({"cool_down": 1, "warm_up": 1})},
)


# Trainer callbacks: a trainer with the callback trains a classifier for one epoch and validates it.


ONE_EPOCH = {"num_epochs": 1, "optimizer": {"type": "sgd", "lr": 0.1}}


def train_classifier(
    bench: Bench, directory: str, trainer: Dict[str, Any], model: Dict[str, Any] = CLASSIFIER
) -> Dict[str, Any]:
    """Trains a classifier (`model`) on the bench's instances as the `trainer` config says; its metrics."""
    vocab = bench.vocabulary()
    loader = SimpleDataLoader(bench.instances(), batch_size=2, vocab=vocab)
    built = Trainer.from_params(
        bench.params(trainer),
        model=Model.from_params(bench.params(model), vocab=vocab),
        serialization_dir=str(bench.directory / directory),
        data_loader=loader,
        validation_data_loader=loader,
    )
    return built.train()


def run_callback(bench: Bench, name: str, case: Case) -> None:
    trainer = {**ONE_EPOCH, "callbacks": [typed(name, case)], "enable_default_callbacks": False}
    metrics = train_classifier(bench, f"callback_{name}", trainer, case.inputs or CLASSIFIER)
    assert "training_loss" in metrics, name


CALLBACKS = Registry(
    TrainerCallback,
    run_callback,
    {
        "adversarial_bias_mitigator_backward": Case({}, ADVERSARIAL_CLASSIFIER),
        "confidence_checks": Case({}),
        "console_logger": Case({}),
        "jacobian_descent": Excluded(
            "ours, and only for multitask models (it refuses others at construction): "
            "tests/training/callbacks/ train multitask models with it"
        ),
        "mixed_precision_backward": Excluded(
            "backpropagates through the trainer's AMP grad scaler, which AllenNLP's trainer makes only with "
            "`use_amp` on a CUDA device (it refuses AMP on the CPU): no GPU here"
        ),
        "null": Case({}),
        "sanity_checks": Case({}),
        "should_validate_callback": Case({"validation_interval": 1}),
        "tensorboard": Case({}),
        "track_epoch_callback": Case({}),
        "wandb": Excluded(
            "logs in to Weights & Biases and starts its service process at construction "
            "(`wandb.login`, then `wandb.init` on start): needs an account and the network"
        ),
    },
)


# Metrics: one update with tensors of the shapes the metric takes, then its value.


def cycled_labels(*shape: int, classes: int = 3) -> torch.Tensor:
    """Class indices 0, 1, ..., classes - 1, 0, ... in `shape`."""
    return torch.arange(int(torch.tensor(shape).prod())).reshape(shape) % classes


def smooth_scores(*shape: int) -> torch.Tensor:
    """Distinct values in [-1, 1] in `shape`: logits, regression values, hidden states."""
    return torch.linspace(-1.0, 1.0, int(torch.tensor(shape).prod())).reshape(shape).sin()


PARSE_TREE = Tree.fromstring("(S (NP (D the) (N film)) (VP (V was) (ADJ great)))")
MASK = torch.tensor([[True, True, True], [True, True, False]])
REGRESSION = (smooth_scores(4), smooth_scores(4).flip(0))
CLASSIFICATION = (smooth_scores(4, 3), cycled_labels(4))
MULTI_LABEL = (smooth_scores(4, 3).sigmoid(), cycled_labels(4, 3, classes=2))
SEQUENCES = (cycled_labels(2, 4, classes=5), cycled_labels(2, 4, classes=5).flip(1))
BEAMS = (cycled_labels(2, 2, 3), cycled_labels(2, 3), MASK)
# Fairness metrics: two classes, two values of the protected variable; predictions, (gold labels,) protected labels.
FAIRNESS = {"num_classes": 2, "num_protected_variable_labels": 2}
PREDICTED, GOLD, PROTECTED = (
    cycled_labels(4, classes=2),
    cycled_labels(4, classes=2).flip(0),
    torch.tensor([0, 0, 1, 1]),
)


def run_metric(bench: Bench, name: str, case: Case) -> None:
    metric = Metric.from_params(bench.params(typed(name, case)), vocabulary=bench.vocabulary())
    metric(*case.inputs)
    assert metric.get_metric(reset=True) is not None, name


METRICS = Registry(
    Metric,
    run_metric,
    {
        "association_without_ground_truth": Case(FAIRNESS, (PREDICTED, PROTECTED)),
        "attachment_scores": Case(
            {}, (cycled_labels(2, 3), cycled_labels(2, 3), cycled_labels(2, 3), cycled_labels(2, 3).flip(1), MASK)
        ),
        "auc": Case({}, (smooth_scores(4), torch.tensor([0, 1, 1, 0]))),
        "average": Case({}, (0.5,)),
        "bleu": Case({}, SEQUENCES),
        "boolean_accuracy": Case({}, (cycled_labels(2, 3), cycled_labels(2, 3).flip(1))),
        "categorical_accuracy": Case({}, CLASSIFICATION),
        "covariance": Case({}, REGRESSION),
        "entropy": Case({}, (smooth_scores(2, 3, 4), MASK)),
        # EVALB compiles (gcc, make) at its first use, in the bench's copy of its sources.
        "evalb": Case({"evalb_directory_path": "EVALB"}, ([PARSE_TREE], [PARSE_TREE])),
        "f1": Case({"positive_label": 1}, CLASSIFICATION),
        "f1_multi_label": Case({}, MULTI_LABEL),
        "fbeta": Case({}, CLASSIFICATION),
        "fbeta_multi_label": Case({}, MULTI_LABEL),
        "fbeta_verbose": Case({}, CLASSIFICATION),
        "independence": Case(FAIRNESS, (PREDICTED, PROTECTED)),
        "mean_absolute_error": Case({}, REGRESSION),
        "pearson_correlation": Case({}, REGRESSION),
        "nli": Case({}, (smooth_scores(4, 3).softmax(-1),)),
        "perplexity": Case({}, (0.5,)),
        "rouge": Case({}, SEQUENCES),
        "separation": Case(FAIRNESS, (PREDICTED, GOLD, PROTECTED)),
        "sequence_accuracy": Case({}, BEAMS),
        "span_f1": Case({}, (smooth_scores(2, 3, 3), cycled_labels(2, 3), MASK)),
        "spearman_correlation": Case({}, REGRESSION),
        "sufficiency": Case(FAIRNESS, (PREDICTED, GOLD, PROTECTED)),
        "unigram_recall": Case({}, BEAMS),
    },
)


# Token embedders: a forward pass over two sentences indexed by the indexer they go with (`inputs`).


def run_token_embedder(bench: Bench, name: str, case: Case) -> None:
    indexer, tokenizer = case.inputs
    vocab, tensors = bench.indexed_text(indexer, tokenizer)
    embedder = TokenEmbedder.from_params(bench.params(typed(name, case)), vocab=vocab)
    # As `BasicTextFieldEmbedder` calls it: a single tensor positionally, several by name.
    embedded = embedder(*tensors.values()) if len(tensors) == 1 else embedder(**tensors)
    assert embedded is None if isinstance(embedder, EmptyEmbedder) else embedded.shape[0] == 2, name


CHARACTERS = {"type": "characters", "min_padding_length": 2}
TRANSFORMER_TOKENIZER = {"type": "pretrained_transformer", "model_name": TINY_BERT}

TOKEN_EMBEDDERS = Registry(
    TokenEmbedder,
    run_token_embedder,
    {
        "bag_of_word_counts": Case({}, ({"type": "single_id"}, None)),
        "character_encoding": Case(
            {
                "embedding": {"embedding_dim": 3, "vocab_namespace": "token_characters"},
                "encoder": {"type": "cnn", "embedding_dim": 3, "num_filters": 4, "ngram_filter_sizes": [2]},
            },
            (CHARACTERS, None),
        ),
        "elmo_token_embedder": Excluded(
            "loads ELMo's options and hdf5 weights, downloaded from AllenNLP's S3 bucket by default: no network"
        ),
        "embedding": Case({"embedding_dim": 4}, ({"type": "single_id"}, None)),
        "empty": Case({}, ({"type": "single_id"}, None)),
        "pass_through": Case({"hidden_dim": 1}, ({"type": "single_id"}, None)),
        "pretrained_transformer": Case(
            {"model_name": TINY_BERT},
            ({"type": "pretrained_transformer", "model_name": TINY_BERT}, TRANSFORMER_TOKENIZER),
        ),
        "pretrained_transformer_mismatched": Case(
            {"model_name": TINY_BERT}, ({"type": "pretrained_transformer_mismatched", "model_name": TINY_BERT}, None)
        ),
    },
)


# Seq2seq and seq2vec encoders: a forward pass over a padded batch of two sequences.


def encoder_inputs(dimension: int) -> Tuple[torch.Tensor, torch.Tensor]:
    return smooth_scores(2, 3, dimension), MASK


def run_seq2seq_encoder(bench: Bench, name: str, case: Case) -> None:
    encoder = Seq2SeqEncoder.from_params(bench.params(typed(name, case)))
    encoded = encoder(*encoder_inputs(case.inputs or 4))
    assert encoded.shape[:2] == (2, 3) and encoded.shape[2] == encoder.get_output_dim(), name


def run_seq2vec_encoder(bench: Bench, name: str, case: Case) -> None:
    encoder = Seq2VecEncoder.from_params(bench.params(typed(name, case)))
    encoded = encoder(*encoder_inputs(case.inputs or 4))
    assert encoded.shape == (2, encoder.get_output_dim()), name


AUGMENTED_LSTM = (
    "AllenNLP 2.10.1's own bug on any torch, left as it is: `get_output_dim` reads `AugmentedLstm.hidden_size`, "
    "which AugmentedLstm never had (it keeps `lstm_dim`), so every model that asks its encoder's size fails"
)
RNN = {"input_size": 4, "hidden_size": 3}
HIGHWAY_LSTM = {**RNN, "num_layers": 2}

SEQ2SEQ_ENCODERS = Registry(
    Seq2SeqEncoder,
    run_seq2seq_encoder,
    {
        "alternating_lstm": Case(HIGHWAY_LSTM),
        "augmented_lstm": Excluded(AUGMENTED_LSTM),
        "compose": Case({"encoders": [{"type": "pass_through", "input_dim": 4}, {"type": "gru", **RNN}]}),
        "feedforward": Case(
            {"feedforward": {"input_dim": 4, "num_layers": 1, "hidden_dims": 3, "activations": "relu"}}
        ),
        "gated-cnn-encoder": Case({"input_dim": 4, "layers": [[[2, 4]]]}),
        "gru": Case(RNN),
        "lstm": Case(RNN),
        "pass_through": Case({"input_dim": 4}),
        "pytorch_transformer": Case(
            {"input_dim": 4, "num_layers": 1, "feedforward_hidden_dim": 8, "num_attention_heads": 2}
        ),
        "rnn": Case(RNN),
        "stacked_bidirectional_lstm": Case(HIGHWAY_LSTM),
    },
)

SEQ2VEC_ENCODERS = Registry(
    Seq2VecEncoder,
    run_seq2vec_encoder,
    {
        "alternating_lstm": Case(HIGHWAY_LSTM),
        "augmented_lstm": Excluded(AUGMENTED_LSTM),
        "bag_of_embeddings": Case({"embedding_dim": 4}),
        "bert_pooler": Case({"pretrained_model": TINY_BERT}, 16),
        "boe": Case({"embedding_dim": 4}),
        "cls_pooler": Case({"embedding_dim": 4}),
        "cnn": Case({"embedding_dim": 4, "num_filters": 2, "ngram_filter_sizes": [2]}),
        "cnn-highway": Case({"embedding_dim": 4, "filters": [[2, 3]], "num_highway": 1, "projection_dim": 3}),
        "gru": Case(RNN),
        "lstm": Case(RNN),
        "rnn": Case(RNN),
        "stacked_bidirectional_lstm": Case(HIGHWAY_LSTM),
    },
)


# Heads: a forward pass over a backbone's outputs with labels gives a loss.


def run_head(bench: Bench, name: str, case: Case) -> None:
    head = Head.from_params(bench.params(typed(name, case)), vocab=bench.vocabulary())
    encoded_text, mask = encoder_inputs(4)
    outputs = head(encoded_text, mask, **case.inputs)
    outputs["loss"].backward()
    assert head.get_metrics(reset=True) is not None, name


HEADS = Registry(
    Head,
    run_head,
    {
        "classifier": Case({"seq2vec_encoder": BOE}, {"label": torch.tensor([0, 1])}),
        "regression": Case({"seq2vec_encoder": BOE}, {"label": torch.tensor([0.5, -1.0])}),
        "tagger": Case({"input_dim": 4, "label_namespace": "tags"}, {"tags": cycled_labels(2, 3)}),
    },
)


# Backbones: a forward pass over indexed text (`inputs`: the indexer and tokenizer) gives encoded text.


def run_backbone(bench: Bench, name: str, case: Case) -> None:
    indexer, tokenizer = case.inputs
    vocab, tensors = bench.indexed_text(indexer, tokenizer)
    backbone = Backbone.from_params(bench.params(typed(name, case)), vocab=vocab)
    outputs = backbone(text={"tokens": tensors})
    assert outputs["encoded_text"].shape[0] == 2, name


BACKBONES = Registry(
    Backbone,
    run_backbone,
    {
        "embedder": Case(
            {"text_field_embedder": WORD_EMBEDDER},
            ({"type": "single_id"}, None),
        ),
        "pretrained_transformer": Case(
            {"model_name": TINY_BERT},
            ({"type": "pretrained_transformer", "model_name": TINY_BERT}, TRANSFORMER_TOKENIZER),
        ),
        "vilbert": Excluded(
            "a vision-and-language backbone: its forward takes image regions (box features, coordinates and "
            "masks) from a region detector, which a text-only multitask model never gives it"
        ),
        "vilbert_from_huggingface": Excluded(
            "builds the `vilbert` backbone from a text transformer (see `vilbert`): image regions only"
        ),
    },
)


# Tokenizers: a sentence becomes tokens.


def run_tokenizer(bench: Bench, name: str, case: Case) -> None:
    tokenizer = Tokenizer.from_params(bench.params(typed(name, case)))
    assert [token.text for token in tokenizer.tokenize("the film was great")], name


TOKENIZERS = Registry(
    Tokenizer,
    run_tokenizer,
    {
        "character": Case({}),
        "just_spaces": Case({}),
        "letters_digits": Case({}),
        "pretrained_transformer": Case({"model_name": TINY_BERT}),
        "spacy": Excluded(SPACY_MODEL),
        "whitespace": Case({}),
    },
)


# Token indexers: two sentences (tokenized as `inputs` says) become padded tensors.


def run_token_indexer(bench: Bench, name: str, case: Case) -> None:
    _, tensors = bench.indexed_text(typed(name, case), case.inputs)
    assert all(tensor.shape[0] == 2 for tensor in tensors.values()), name


TOKEN_INDEXERS = Registry(
    TokenIndexer,
    run_token_indexer,
    {
        "characters": Case({"min_padding_length": 2}),
        "elmo_characters": Case({}),
        "pretrained_transformer": Case({"model_name": TINY_BERT}, TRANSFORMER_TOKENIZER),
        "pretrained_transformer_mismatched": Case({"model_name": TINY_BERT}),
        "single_id": Case({}),
        "spacy": Excluded(f"indexes spaCy's own tokens with their vectors, which the spacy tokenizer {SPACY_MODEL}"),
    },
)


# Multitask epoch samplers: how many instances of each task an epoch takes.


def run_epoch_sampler(bench: Bench, name: str, case: Case) -> None:
    instances = bench.instances()
    loaders = {"short": SimpleDataLoader(instances[:1], 1), "long": SimpleDataLoader(instances * 2, 1)}
    sampler = MultiTaskEpochSampler.from_params(bench.params(typed(name, case)))
    proportions = sampler.get_task_proportions(loaders)
    assert proportions.keys() == loaders.keys() and abs(sum(proportions.values()) - 1.0) < 1e-6, name


EPOCH_SAMPLERS = Registry(
    MultiTaskEpochSampler,
    run_epoch_sampler,
    {
        "proportional": Case({}),
        "temperature": Case({"temperature": 2.0}),
        "uniform": Case({}),
        "weighted": Case({"weights": {"short": 1.0, "long": 3.0}}),
    },
)


# Batch samplers: the instances grouped into batches.


def run_batch_sampler(bench: Bench, name: str, case: Case) -> None:
    instances = bench.instances() * 2
    sampler = BatchSampler.from_params(bench.params(typed(name, case)))
    batches = list(sampler.get_batch_indices(instances))
    assert sorted(index for batch in batches for index in batch) == list(range(len(instances))), name
    assert sampler.get_num_batches(instances) == len(batches), name


BATCH_SAMPLERS = Registry(
    BatchSampler,
    run_batch_sampler,
    {"bucket": Case({"batch_size": 2}), "max_tokens_sampler": Case({"max_tokens": 8})},
)


# Data loaders: a reader's file read and batched, indexed with a vocabulary from the instances.


TEXT_READER = {"type": "text_classification_json", "tokenizer": "whitespace"}
MULTITASK_READER = {"type": "multitask", "readers": {"sentiment": TEXT_READER}}


def run_data_loader(bench: Bench, name: str, case: Case) -> None:
    reader_config, data_path = case.inputs
    reader = DatasetReader.from_params(bench.params(reader_config))
    # As `allennlp train` builds it: the reader and data path are given, not configured.
    loader = DataLoader.from_params(bench.params(typed(name, case)), reader=reader, data_path=bench.resolve(data_path))
    loader.index_with(Vocabulary.from_instances(loader.iter_instances()))
    batch = next(iter(loader))
    assert batch, name


DATA_LOADERS = Registry(
    DataLoader,
    run_data_loader,
    {
        "multiprocess": Case({"batch_size": 2}, (TEXT_READER, "text.jsonl")),
        "multitask": Case({"scheduler": {"batch_size": 2}}, (MULTITASK_READER, {"sentiment": "text.jsonl"})),
        "simple": Case({"batch_size": 2}, (TEXT_READER, "text.jsonl")),
    },
)


# Predictors: a prediction for one JSON input, from an untrained model of the kind the predictor serves.


def multitask_model(vocab: Vocabulary) -> Model:
    return Model.from_params(
        Params(
            copy.deepcopy(
                {
                    "type": "multitask",
                    "backbone": {
                        "type": "embedder",
                        "text_field_embedder": WORD_EMBEDDER,
                    },
                    "heads": {"sentiment": {"type": "classifier", "seq2vec_encoder": BOE}},
                    "arg_name_mapping": {"backbone": {"tokens": "text"}},
                }
            )
        ),
        vocab=vocab,
    )


def run_predictor(bench: Bench, name: str, case: Case) -> None:
    model_for, reader_config, inputs = case.inputs
    reader = DatasetReader.from_params(bench.params(reader_config))
    model = model_for(bench.vocabulary())
    predictor = Predictor.from_params(bench.params(typed(name, case)), model=model, dataset_reader=reader)
    assert predictor.predict_json(inputs), name


PREDICTORS = Registry(
    Predictor,
    run_predictor,
    {
        "multitask": Case(
            {},
            (
                multitask_model,
                MULTITASK_READER,
                {"task": "sentiment", "sentence": "the film was great"},
            ),
        ),
        "sentence_tagger": Excluded(f"tokenizes its input sentence with spaCy: it {SPACY_MODEL}"),
        "text_classifier": Case({}, (classifier_model, TEXT_READER, {"sentence": "the film was great"})),
    },
)


# Dataset readers: a small file in the reader's format read into instances.


def reads(file: Any) -> Callable[[Bench, DatasetReader], Iterable[Instance]]:
    """What a reader reads: `file` (a bench's file name, or files by key)."""
    return lambda bench, reader: reader.read(bench.resolve(file))


def run_dataset_reader(bench: Bench, name: str, case: Case) -> None:
    reader = DatasetReader.from_params(bench.params(typed(name, case)))
    instances = list(case.inputs(bench, reader))
    assert instances and all(isinstance(instance, Instance) for instance in instances), name


DATASET_READERS = Registry(
    DatasetReader,
    run_dataset_reader,
    {
        "babi": Case({}, reads("babi.txt")),
        "conll2003": Case({}, reads("conll2003.txt")),
        "conll_tags": Case({"tag_columns": {"tags": 2}}, reads("conll_tags.txt")),
        "interleaving": Case(
            {"readers": {"a": TEXT_READER, "b": TEXT_READER}},
            # Its data path is JSON: a file per reader.
            lambda bench, reader: reader.read(json.dumps(bench.resolve({"a": "text.jsonl", "b": "text.jsonl"}))),
        ),
        "labeled_text_json": Case({}, reads("text.jsonl")),
        "multitask": Case(
            {"readers": {"sentiment": TEXT_READER}},
            # As the multitask data loader reads: a task at a time.
            lambda bench, reader: reader.read(bench.resolve("text.jsonl"), force_task="sentiment"),
        ),
        "multitask_shim": Case({"inner": TEXT_READER, "head": "sentiment"}, reads("text.jsonl")),
        "sequence_tagging": Case({}, reads("tagged.txt")),
        "sharded": Case({"base_reader": TEXT_READER}, reads("shards")),
        "text_classification_json": Case({"tokenizer": "whitespace"}, reads("text.jsonl")),
    },
)

REGISTRIES: Tuple[Registry, ...] = (
    OPTIMIZERS,
    LEARNING_RATE_SCHEDULERS,
    MOMENTUM_SCHEDULERS,
    CALLBACKS,
    METRICS,
    TOKEN_EMBEDDERS,
    SEQ2SEQ_ENCODERS,
    SEQ2VEC_ENCODERS,
    HEADS,
    BACKBONES,
    TOKENIZERS,
    TOKEN_INDEXERS,
    EPOCH_SAMPLERS,
    BATCH_SAMPLERS,
    DATA_LOADERS,
    PREDICTORS,
    DATASET_READERS,
)
