"""
The whole `allennlp train` command, from spawn to exit, against a plain PyTorch script doing the same job
(benchmarks/plain_train.py: same data files, vocabulary, batches, model, optimizer, seeds; torch alone).

The job: `--tasks` classification tasks of `--sentences` training sentences each (a tenth as many for
validation; random words of a Zipf-like vocabulary, 5 to 30 of them), JSON lines read with our
"labeled_text_json" reader; batches of 32 from AllenNLP's "homogeneous_roundrobin" scheduler without
shuffling; an embedding (128) and bidirectional LSTM (2 x 64) backbone with AllenNLP classifier heads;
Adam; one epoch and a validation pass; then the model archive.

Variants: "default" (Adam as configs have it), "fused" (`"fused": true`, torch's fused Adam), "default,
AllenNLP's classes" (`allennlp train` only, with AllenNLP's multitask data loader and `TrainModel` instead
of ours, which read and index with the garbage collector paused, tensorise a batch at a time and free
the instances when training ends: the "before"), and "default, malloc" and "fused, malloc" (with
glibc's allocator told to keep freed memory rather than return it to the system, which spares page
faults; see the README). Each round runs every program of every variant once, in a shuffled order.

The tables give, over the rounds, min / median of each program's whole-command time; the ratios of
medians to the plain script of the same variant and of the "default" variant; the training loss; and
each phase: start-up (spawn to first stamp: interpreter, imports, parsing), reading, vocabulary, indexing,
epoch, validation, archive, exit (last stamp to the process's end) and other (the rest: building the model,
trainer and data loaders, AllenNLP's checkpoint and metrics files; for the plain script, mostly torch's
first optimizer, which imports torch._dynamo). Phases come from benchmarks/phase_clock.py; `allennlp train`
is stamped by benchmarks/phase_probe.py, loaded with `--include-package`.

    python benchmarks/train_end_to_end.py --sentences 20000 --runs 3
"""

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

import torch
from workload import cpu_model, print_table

BENCHMARKS = Path(__file__).resolve().parent
PROGRAMS = ("allennlp", "plain")
PHASES = ("start-up", "reading", "vocabulary", "indexing", "epoch", "validation", "archive", "exit", "other")
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "4294967296"}
VARIANTS: Dict[str, Dict[str, Any]] = {
    "default": {"optimizer": {}, "environment": {}},
    "fused": {"optimizer": {"fused": True}, "environment": {}},
    # `allennlp train` only, with AllenNLP's multitask data loader and `TrainModel` in place of ours.
    "default, AllenNLP's classes": {"optimizer": {}, "environment": {"PHASE_PROBE_ALLENNLP_CLASSES": "1"}},
    "default, malloc": {"optimizer": {}, "environment": MALLOC},
    "fused, malloc": {"optimizer": {"fused": True}, "environment": MALLOC},
}
ALLENNLP_ONLY = {"default, AllenNLP's classes"}
NUM_LABELS = 4


def write_data(directory: Path, tasks: int, sentences: int, seed: int) -> Dict[str, Dict[str, str]]:
    """JSON lines per task and split; a label is set by the first word, so the heads can learn it."""
    generator = random.Random(seed)
    words = [f"w{index}" for index in range(20000)]
    weights = [1 / (rank + 1) for rank in range(len(words))]
    paths: Dict[str, Dict[str, str]] = {"train": {}, "validation": {}}
    for task in [f"task{index}" for index in range(tasks)]:
        for split, count in (("train", sentences), ("validation", max(sentences // 10, 1))):
            path = directory / f"{task}_{split}.jsonl"
            with path.open("w") as lines:
                for _ in range(count):
                    text = generator.choices(words, weights, k=generator.randint(5, 30))
                    label = f"label{int(text[0][1:]) % NUM_LABELS}"
                    lines.write(json.dumps({"text": " ".join(text), "label": label}) + "\n")
            paths[split][task] = str(path)
    return paths


def allennlp_config(paths: Dict[str, Dict[str, str]], optimizer: Dict[str, Any]) -> Dict[str, Any]:
    tasks = sorted(paths["train"])
    loader = {"type": "multitask", "scheduler": {"type": "homogeneous_roundrobin", "batch_size": 32}, "shuffle": False}
    return {
        "dataset_reader": {
            "type": "multitask",
            "readers": {task: {"type": "labeled_text_json", "label_namespace": f"{task}_labels"} for task in tasks},
        },
        "data_loader": loader,
        "train_data_path": paths["train"],
        "validation_data_path": paths["validation"],
        "model": {
            "type": "multitask",
            "backbone": {
                "type": "embedder",
                "text_field_embedder": {"token_embedders": {"tokens": {"type": "embedding", "embedding_dim": 128}}},
                "encoder": {"type": "lstm", "input_size": 128, "hidden_size": 64, "bidirectional": True},
            },
            "heads": {
                task: {
                    "type": "classifier",
                    "seq2vec_encoder": {"type": "boe", "embedding_dim": 128, "averaged": True},
                    "label_namespace": f"{task}_labels",
                }
                for task in tasks
            },
        },
        "trainer": {"optimizer": {"type": "adam", "lr": 0.001, **optimizer}, "num_epochs": 1, "cuda_device": -1},
    }


def command(program: str, config: Path, serialization_dir: Path) -> List[str]:
    if program == "plain":
        return [sys.executable, str(BENCHMARKS / "plain_train.py"), str(config), str(serialization_dir)]
    allennlp = Path(sys.executable).with_name("allennlp")  # The console script a user runs.
    include = ["--include-package", "allennlp_multitask", "--include-package", "phase_probe"]
    return [str(allennlp), "train", str(config), "-s", str(serialization_dir), *include]


def run_once(program: str, config: Path, run_dir: Path, environment: Dict[str, str]) -> Dict[str, Any]:
    """Runs one program to its end; its total and phase seconds on both clocks, and its training loss."""
    phases_path = run_dir / "phases.json"
    environment = {**environment, "PHASE_CLOCK_OUTPUT": str(phases_path)}
    with (run_dir / "output.log").open("w") as log:
        spawned = time.monotonic()
        process = subprocess.Popen(command(program, config, run_dir / "run"), env=environment, stdout=log, stderr=log)
        _, status, usage = os.wait4(process.pid, 0)
        ended = time.monotonic()
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{program} failed ({process.returncode}); see {run_dir / 'output.log'}")
    report = json.loads(phases_path.read_text())
    totals = {"wall": ended - spawned, "cpu": usage.ru_utime + usage.ru_stime}
    phases = {}
    for clock, total in totals.items():
        seconds = dict(report["phases"][clock])
        seconds["start-up"] = report["started"][clock] - (spawned if clock == "wall" else 0.0)
        seconds["exit"] = (ended if clock == "wall" else total) - report["ended"][clock]
        seconds["other"] = total - sum(seconds.values())
        phases[clock] = seconds
    if program == "allennlp":
        loss = json.loads((run_dir / "run" / "metrics.json").read_text())["training_loss"]
    else:
        loss = report["values"]["training_loss"]
    return {"total": totals, "phases": phases, "training_loss": loss}


def slug(variant: str) -> str:
    """A file name for a variant: its letters and digits, the rest as underscores."""
    return re.sub(r"[^A-Za-z0-9]+", "_", variant)


def programs_of(variant: str) -> Sequence[str]:
    return PROGRAMS[:1] if variant in ALLENNLP_ONLY else PROGRAMS


def min_median(values: Sequence[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f}"


def print_report(results: Dict[str, Dict[str, List[Dict[str, Any]]]], clock: str) -> None:
    plain_default = [run["total"][clock] for run in results.get("default", {}).get("plain", [])]
    rows = []
    for variant, programs in results.items():
        for program, runs in programs.items():
            totals = [run["total"][clock] for run in runs]
            plain = [run["total"][clock] for run in programs.get("plain", [])]
            same = f"{statistics.median(totals) / statistics.median(plain):.3f}" if plain else "-"
            row = [variant, program, min_median(totals), same]
            default = f"{statistics.median(totals) / statistics.median(plain_default):.3f}" if plain_default else "-"
            rows.append([*row, default, f"{statistics.median(run['training_loss'] for run in runs):.6f}"])
    header = ["variant", "program", f"whole command, {clock} s (min / median)", "÷ plain", "÷ plain default", "loss"]
    print_table(header, rows)
    print()
    rows = []
    for variant, programs in results.items():
        for program, runs in programs.items():
            rows.append(
                [variant, program, *(min_median([run["phases"][clock][phase] for run in runs]) for phase in PHASES)]
            )
    print_table(["variant", "program", *PHASES], rows)


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=2000, help="training sentences per task")
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="rounds; each runs every program of every variant")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for both programs")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="process CPU time or wall time")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(list(argv))
    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCHMARKS), os.environ.get("PYTHONPATH")]))
    print(f"{cpu_model()}, load average {os.getloadavg()[0]:.2f}", end="; ")
    print(f"Python {platform.python_version()}, torch {torch.__version__}")
    print(f"{args.tasks} tasks x {args.sentences} sentences, {args.threads} thread(s)", end=", ")
    print(f"{args.runs} rounds, {args.clock} time")
    with tempfile.TemporaryDirectory(prefix="train_end_to_end_") as scratch:
        directory = Path(scratch)
        paths = write_data(directory, args.tasks, args.sentences, args.seed)
        jobs = []
        for variant in args.variants:
            config = directory / f"{slug(variant)}.json"
            config.write_text(json.dumps(allennlp_config(paths, VARIANTS[variant]["optimizer"]), indent=2))
            jobs += [(variant, program, config) for program in programs_of(variant)]
        results = {variant: {program: [] for program in programs_of(variant)} for variant in args.variants}
        shuffle = random.Random(args.seed).shuffle
        for round_index in range(args.runs):
            shuffle(jobs)
            for variant, program, config in jobs:
                run_dir = directory / f"round{round_index}" / slug(variant) / program
                run_dir.mkdir(parents=True)
                job_environment = {**environment, **VARIANTS[variant]["environment"]}
                results[variant][program].append(run_once(program, config, run_dir, job_environment))
    print(f"load average at the end {os.getloadavg()[0]:.2f}\n")
    print_report(results, args.clock)


if __name__ == "__main__":
    main(sys.argv[1:])
