"""
Where the epoch of `allennlp train` loses time against the plain script (benchmarks/train_end_to_end.py):
the forward and backward passes of both models in one process, on the same batches with the same weights,
timed by CPU time and counted in minor page faults per batch.

The job is train_end_to_end's (3 tasks, random words, Embedding 128 and a bidirectional LSTM, a classifier
head per task; batches of 32 from our "multitask" loader). The AllenNLP model is our `MultiTaskModel`
built from that configuration; the plain one is benchmarks/plain_train.py's, given the same weights. Each
step is a forward pass, the loss's backward pass and `zero_grad(set_to_none=True)`, as in both programs;
no optimizer, so that the two steps do the same arithmetic. Each round runs both over all batches, in a
shuffled order; the table gives medians over the rounds.

glibc's allocator settings are read when the process starts; compare

    python benchmarks/step_page_faults.py
    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 python benchmarks/step_page_faults.py
"""

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import torch
from allennlp.common import Params
from allennlp.data import DataLoader, DatasetReader, Vocabulary
from allennlp.models import Model
from plain_train import PlainModel
from train_end_to_end import allennlp_config, write_data
from workload import cpu_model, print_table

import allennlp_multitask  # noqa: F401  (registers our components)


def build(config: Dict[str, Any], batches: int) -> Dict[str, Any]:
    """Both models, the plain one with the AllenNLP model's weights, and the first `batches` batches in each form."""
    reader = DatasetReader.from_params(Params(config["dataset_reader"]))
    loader = DataLoader.from_params(Params(config["data_loader"]), reader=reader, data_path=config["train_data_path"])
    vocab = Vocabulary.from_instances(loader.iter_instances())
    loader.index_with(vocab)
    model = Model.from_params(Params(config["model"]), vocab=vocab)
    tasks = sorted(config["train_data_path"])
    labels = {task: vocab.get_vocab_size(f"{task}_labels") for task in tasks}
    plain = PlainModel(vocab.get_vocab_size("tokens"), 128, 64, labels)
    weights = model.state_dict()
    names = {"embedding.weight": "_backbone._text_field_embedder.token_embedder_tokens.weight"}
    for name, _ in plain.encoder.named_parameters():
        names[f"encoder.{name}"] = f"_backbone._encoder._module.{name}"
    for task in tasks:
        for part in ("weight", "bias"):
            names[f"heads.{task}.{part}"] = f"_heads.{task}._classification_layer.{part}"
    plain.load_state_dict({ours: weights[theirs] for ours, theirs in names.items()})
    allennlp_batches = [batch for _, batch in zip(range(batches), loader)]
    plain_batches = [
        (batch["task"][0], batch["text"]["tokens"]["tokens"], batch["label"]) for batch in allennlp_batches
    ]
    return {"allennlp": (model, allennlp_batches), "plain": (plain, plain_batches)}


def allennlp_step(model: torch.nn.Module, batch: Dict[str, Any]) -> float:
    loss = model(**batch)["loss"]
    loss.backward()
    model.zero_grad(set_to_none=True)
    return loss.item()


def plain_step(model: torch.nn.Module, batch: Sequence[Any]) -> float:
    task, tokens, labels = batch
    loss = torch.nn.functional.cross_entropy(model(task, tokens), labels)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return loss.item()


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


Step = Callable[[torch.nn.Module, Any], float]


def timed(step: Step, model: torch.nn.Module, batches: List[Any]) -> Dict[str, float]:
    faults, start = minor_faults(), time.process_time()
    for batch in batches:
        step(model, batch)
    seconds, faults = time.process_time() - start, minor_faults() - faults
    return {"ms": seconds * 1000 / len(batches), "faults": faults / len(batches)}


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=4000, help="training sentences per task")
    parser.add_argument("--batches", type=int, default=300, help="batches timed per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(list(argv))
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="step_page_faults_") as scratch:
        config = allennlp_config(write_data(Path(scratch), 3, args.sentences, seed=13), optimizer={})
        programs = build(config, args.batches)
    steps = {"allennlp": allennlp_step, "plain": plain_step}
    losses = {name: steps[name](programs[name][0], programs[name][1][0]) for name in steps}
    assert abs(losses["allennlp"] - losses["plain"]) < 1e-5, losses  # Same weights, same batch.
    results: Dict[str, List[Dict[str, float]]] = {name: [] for name in steps}
    order = list(steps)
    for _ in range(args.rounds):
        random.shuffle(order)
        for name in order:
            model, batches = programs[name]
            results[name].append(timed(steps[name], model, batches))
    print(f"{cpu_model()}; Python {sys.version.split()[0]}, torch {torch.__version__}", end="; ")
    print(f"{args.sentences} sentences per task, {args.batches} batches x {args.rounds} rounds")
    plain_ms = statistics.median(run["ms"] for run in results["plain"])
    rows = []
    for name, runs in results.items():
        ms = statistics.median(run["ms"] for run in runs)
        faults = statistics.median(run["faults"] for run in runs)
        rows.append([name, f"{ms:.2f}", f"{ms / plain_ms:.3f}", f"{faults:.1f}"])
    print_table(["program", "step, CPU ms", "÷ plain", "minor page faults per step"], rows)


if __name__ == "__main__":
    main(sys.argv[1:])
