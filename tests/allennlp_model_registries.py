"""
The sweep's tables (see `tests/allennlp_registries.py`) for what trains and evaluates: models, trainers,
checkpointers, evaluators and their serializers, and the registries the sweep leaves to other tests.
"""

import copy
import json
from typing import Any, Dict, List

import torch
from allennlp.common import Params
from allennlp.data import Batch, DatasetReader, Instance, Vocabulary
from allennlp.data.data_loaders import SimpleDataLoader
from allennlp.evaluation import Evaluator
from allennlp.evaluation.serializers.serializers import Serializer
from allennlp.models import Model
from allennlp.models.archival import archive_model
from allennlp.training import Trainer
from allennlp.training.checkpointer import Checkpointer

from tests.allennlp_registries import (
    ADVERSARIAL_CLASSIFIER,
    ADVERSARY,
    BOE,
    CLASSIFIER,
    MULTITASK_READER,
    ONE_EPOCH,
    PCA,
    TEXT_READER,
    WORD_EMBEDDER,
    Bench,
    Case,
    Registry,
    classifier_model,
    smooth_scores,
    train_classifier,
    typed,
)


def read(bench: Bench, reader: Dict[str, Any], file: str) -> List[Instance]:
    built = DatasetReader.from_params(bench.params(reader))
    if reader["type"] == "multitask":
        return list(built.read(bench.resolve(file), force_task="sentiment"))  # as the multitask loader reads
    return list(built.read(bench.resolve(file)))


def archived_classifier(bench: Bench) -> str:
    """A basic classifier of `text.jsonl`'s vocabulary, untrained, archived as `allennlp train` archives."""
    directory = bench.directory / "archived_classifier"
    vocab = Vocabulary.from_instances(read(bench, TEXT_READER, "text.jsonl"))
    model = classifier_model(vocab)
    directory.mkdir()
    Params(copy.deepcopy({"model": CLASSIFIER, "dataset_reader": TEXT_READER})).to_file(str(directory / "config.json"))
    vocab.save_to_files(str(directory / "vocabulary"))
    torch.save(model.state_dict(), directory / "best.th")
    archive_model(str(directory))
    return str(directory / "model.tar.gz")


def run_model(bench: Bench, name: str, case: Case) -> None:
    config = {**typed(name, case)}
    if name == "from_archive":
        config["archive_file"] = archived_classifier(bench)
    if isinstance(case.inputs, dict):  # a model of tensors, not of text: its forward's arguments
        model = Model.from_params(bench.params(config), vocab=bench.vocabulary())
        outputs = model(**case.inputs)
    else:
        reader, file = case.inputs
        instances = read(bench, reader, file)
        model = Model.from_params(bench.params(config), vocab=Vocabulary.from_instances(instances))
        batch = Batch(instances)
        batch.index_instances(model.vocab)
        outputs = model(**batch.as_tensor_dict())
    outputs["loss"].backward()
    assert model.get_metrics(reset=True) is not None and model.make_output_human_readable(outputs), name


MODELS = Registry(
    Model,
    run_model,
    {
        "adversarial_bias_mitigator": Case(
            {k: v for k, v in ADVERSARIAL_CLASSIFIER.items() if k != "type"}, (TEXT_READER, "text.jsonl")
        ),
        "basic_classifier": Case({k: v for k, v in CLASSIFIER.items() if k != "type"}, (TEXT_READER, "text.jsonl")),
        "bias_mitigator_applicator": Case(
            {"base_model": CLASSIFIER, "bias_mitigator": {"type": "linear", "bias_direction": PCA}},
            (TEXT_READER, "text.jsonl"),
        ),
        "feedforward_regression_adversary": Case(
            {"feedforward": ADVERSARY["feedforward"]},
            {"input": smooth_scores(2, 2), "label": smooth_scores(2, 1)},
        ),
        "from_archive": Case({}, (TEXT_READER, "text.jsonl")),
        "multitask": Case(
            {
                "backbone": {"type": "embedder", "text_field_embedder": WORD_EMBEDDER},
                "heads": {"sentiment": {"type": "classifier", "seq2vec_encoder": BOE}},
                "arg_name_mapping": {"backbone": {"tokens": "text"}},
            },
            (MULTITASK_READER, "text.jsonl"),
        ),
        "simple_tagger": Case(
            {"text_field_embedder": WORD_EMBEDDER, "encoder": {"type": "pass_through", "input_dim": 4}},
            ({"type": "sequence_tagging"}, "tagged.txt"),
        ),
    },
)


def run_trainer(bench: Bench, name: str, case: Case) -> None:
    metrics = train_classifier(bench, f"trainer_{name}", typed(name, case))
    assert metrics is not None, name


TRAINERS = Registry(
    Trainer,
    run_trainer,
    {
        "gradient_descent": Case(ONE_EPOCH),
        "no_op": Case({}),
    },
)


def run_checkpointer(bench: Bench, name: str, case: Case) -> None:
    directory = f"checkpointer_{name}"
    train_classifier(bench, directory, {**ONE_EPOCH, "checkpointer": typed(name, case)})
    assert list((bench.directory / directory).glob("model_state_e1*.th")), name


CHECKPOINTERS = Registry(Checkpointer, run_checkpointer, {"default": Case({})})


def run_evaluator(bench: Bench, name: str, case: Case) -> None:
    vocab = bench.vocabulary()
    evaluator = Evaluator.from_params(bench.params(typed(name, case)))
    predictions = bench.directory / f"predictions_{name}.jsonl"
    metrics = evaluator(
        classifier_model(vocab),
        SimpleDataLoader(bench.instances(), batch_size=2, vocab=vocab),
        predictions_output_file=predictions,
    )
    assert "loss" in metrics and [json.loads(line) for line in predictions.read_text().splitlines()], name


EVALUATORS = Registry(Evaluator, run_evaluator, {"simple": Case({})})

SERIALIZERS = Registry(
    Serializer,
    lambda bench, name, case: run_evaluator(bench, "simple", Case({"batch_serializer": typed(name, case)})),
    {"simple": Case({})},
)

MODEL_REGISTRIES = (MODELS, TRAINERS, CHECKPOINTERS, EVALUATORS, SERIALIZERS)

# AllenNLP's other registries (base classes by qualified name), which the sweep leaves, and why.
NOT_SWEPT: Dict[str, str] = {
    "allennlp.commands.subcommand.Subcommand": "the `allennlp` commands: tests/commands run them as users do",
    "allennlp.commands.train.TrainModel": "`allennlp train`'s whole run, built from a whole config: tests/commands",
    "allennlp.nn.parallel.ddp_accelerator.DdpAccelerator": (
        "wraps the model of each distributed worker, in a process group: the distributed tests train with "
        "`torch`; `fairscale_fsdp` shards over CUDA devices only"
    ),
    "allennlp.modules.transformer.t5.T5": (
        "AllenNLP's own T5 for allennlp-models' generation models, full size (60M parameters) unless every "
        "stack is configured; no multitask component takes one"
    ),
    "allennlp.modules.transformer.t5.T5FeedForwardProjection": "a part of AllenNLP's T5 (see T5)",
    "allennlp.data.image_loader.ImageLoader": (
        "loads images for vision-and-language readers (torchvision): no text task"
    ),
    "allennlp.data.tokenizers.sentence_splitter.SentenceSplitter": (
        "spaCy's sentence splitter, which loads a spaCy model (downloaded on first use; no network here)"
    ),
    "allennlp_multitask.models.loss_weighting.LossWeighting": "ours, not AllenNLP's: tests/models cover each",
}
