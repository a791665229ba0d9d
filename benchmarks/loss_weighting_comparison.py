"""
What each way of combining the heads' losses buys on the bundled CoNLL example (examples/conll_pos_ner.jsonnet:
POS and NER taggers on every CoNLL sentence, a news-topic classifier on its own task, one LSTM backbone): static
weights, `uw`, `famo`, `stch` and UPGrad at the representation level (the `jacobian_descent` callback), each
trained by a real `allennlp train` process with the same seeds and epochs. Every run takes a step per two
batches (`num_gradient_accumulation_steps` 2, as the example's Jacobian descent config: a step sees a CoNLL
batch and a topic batch) and trains all its epochs (no early stopping).

The table gives, per method, the last epoch's validation metrics of each head and the training time (the
trainer's, from metrics.json) and whole-command time, each as `seed 1 / seed 2 / ...`. Run from the
repository root (15 runs; about 45 s each on a shared 2-core machine, mostly start-up):

    .venv/bin/python benchmarks/loss_weighting_comparison.py
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from workload import cpu_model, print_table

REPOSITORY = Path(__file__).resolve().parent.parent
CONFIG = "examples/conll_pos_ner.jsonnet"  # Its data paths are relative to the repository root.
METHODS: Dict[str, Dict[str, Any]] = {
    "static": {},
    "uw": {"model.loss_weighting": {"type": "uw"}},
    "famo": {"model.loss_weighting": {"type": "famo"}},
    "stch": {"model.loss_weighting": {"type": "stch", "mu": 0.5}},
    "upgrad (representation)": {
        "trainer.callbacks": [{"type": "jacobian_descent", "aggregator": "upgrad", "level": "representation"}]
    },
}
METRICS = {
    "pos accuracy": "validation_pos_accuracy",
    "ner F1": "validation_ner_f1-measure-overall",
    "topic accuracy": "validation_topic_accuracy",
}


def train(method: str, seed: int, epochs: int, directory: Path) -> Dict[str, float]:
    """One `allennlp train` run of `method`: its final validation metrics, training time and command time."""
    overrides = {
        **METHODS[method],
        "random_seed": seed,
        "numpy_seed": seed,
        "pytorch_seed": seed,
        "trainer.num_epochs": epochs,
        "trainer.patience": None,
        "trainer.num_gradient_accumulation_steps": 2,
    }
    run = directory / f"{method.split()[0]}-{seed}"
    allennlp = Path(sys.executable).with_name("allennlp")  # The console script a user runs.
    command = [str(allennlp), "train", CONFIG, "-s", str(run), "-o", json.dumps(overrides)]
    start = time.perf_counter()
    finished = subprocess.run(
        [*command, "--include-package", "allennlp_multitask"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    wall = time.perf_counter() - start
    if finished.returncode != 0:
        raise RuntimeError(f"{method}, seed {seed}: allennlp train failed:\n{finished.stderr[-3000:]}")
    metrics = json.loads((run / "metrics.json").read_text())
    hours, minutes, seconds = metrics["training_duration"].split(":")
    training = 3600 * int(hours) + 60 * int(minutes) + float(seconds)
    return {**{name: metrics[key] for name, key in METRICS.items()}, "training (s)": training, "command (s)": wall}


def main(arguments: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--tiny", action="store_true", help="a trial: one epoch, one seed")
    args = parser.parse_args(arguments)
    epochs, seeds = (1, args.seeds[:1]) if args.tiny else (args.epochs, args.seeds)
    print(f"CPU: {cpu_model()}; one torch thread per run; {epochs} epochs; seeds {seeds}.", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for method in args.methods:
            results = [train(method, seed, epochs, Path(directory)) for seed in seeds]
            cells = [
                " / ".join(f"{result[name]:.{1 if '(s)' in name else 3}f}" for result in results) for name in results[0]
            ]
            rows.append([method, *cells])
            print(f"{method}: done", flush=True)
    print_table(["method", *METRICS, "training (s)", "command (s)"], rows)


if __name__ == "__main__":
    main()
