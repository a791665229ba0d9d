"""
Kills `allennlp train` of the bundled two-task example again and again, at random moments, and resumes
it each time with `allennlp train -r`, as a preempted job would be; then compares its final metrics with
those of a run never stopped. The runs have dropout and a shuffled validation set, so that an inexact
resume would show.

- SIGKILL: `--kills` times, each a random time after the run logged "Beginning training" (uniform over
  `--window` epochs' time, measured on the uninterrupted run), a new kill whenever the run is still
  going; then one last `-r` run to the end.
- SIGTERM: `--sigterms` times, each then resumed; it reports how long after the signal the checkpoint
  was written and the process had exited, and with what exit status.

    python benchmarks/kill_and_resume.py --kills 8 --sigterms 2

Runs from the repository root (the example's data paths are relative to it); the runs go to a
temporary directory.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG = REPO_ROOT / "examples" / "sentiment_and_topic.jsonnet"
ALLENNLP = str(Path(sys.executable).parent / "allennlp")
STARTED = "Beginning training."
CHECKPOINTED = "checkpoint written to"


def overrides(epochs: int) -> str:
    return json.dumps(
        {"trainer.num_epochs": epochs, "model.heads.sentiment.dropout": 0.3, "validation_data_loader.shuffle": True}
    )


def start(run: Path, epochs: int) -> subprocess.Popen:
    """`allennlp train` of the example into `run`, with `-r` once `run` holds a configuration."""
    recover = ["-r"] if (run / "config.json").exists() else []
    command = [ALLENNLP, "train", str(CONFIG), "-s", str(run), "-o", overrides(epochs), *recover]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [*command, "--include-package", "allennlp_multitask"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(run: Path, text: str, process: subprocess.Popen, after: int = 0) -> Optional[float]:
    """When `text` appears in the run's log past its first `after` characters; `None` if the process ends first."""
    log = run / "out.log"
    while process.poll() is None:
        if log.exists() and text in log.read_text(errors="replace")[after:]:
            return time.monotonic()
        time.sleep(0.01)
    return None


def log_length(run: Path) -> int:
    return len((run / "out.log").read_text(errors="replace")) if (run / "out.log").exists() else 0


def final_metrics(run: Path) -> Dict[str, Any]:
    metrics = json.loads((run / "metrics.json").read_text())
    return {key: value for key, value in metrics.items() if "duration" not in key and "memory" not in key}


def uninterrupted(run: Path, epochs: int) -> float:
    """Trains to the end; returns the seconds from "Beginning training" to the process's exit."""
    process = start(run, epochs)
    began = wait_for(run, STARTED, process)
    if process.wait() != 0 or began is None:
        raise RuntimeError(f"The uninterrupted run failed; see {run / 'out.log'}.")
    return time.monotonic() - began


def killed_again_and_again(run: Path, epochs: int, kills: int, window: float, rng: random.Random) -> List[str]:
    """SIGKILLs `kills` times, then runs to the end; returns the checkpoints on disk after each kill."""
    after_kills = []
    while len(after_kills) < kills:
        process = start(run, epochs)
        if wait_for(run, STARTED, process, log_length(run)) is None:
            break  # It finished before training began again: nothing left to kill.
        time.sleep(rng.uniform(0, window))
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        after_kills.append(" ".join(sorted(path.name for path in run.glob("model_state_*.th"))) or "none")
    if start(run, epochs).wait() != 0:
        raise RuntimeError(f"The last resumed run failed; see {run / 'out.log'}.")
    return after_kills


def terminated(run: Path, epochs: int, sigterms: int, window: float, rng: random.Random) -> List[Dict[str, Any]]:
    """SIGTERMs `sigterms` times, each then resumed; returns how each stop went."""
    stops = []
    for _ in range(sigterms):
        process = start(run, epochs)
        if wait_for(run, STARTED, process, log_length(run)) is None:
            break
        time.sleep(rng.uniform(0, window))
        logged = log_length(run)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        checkpointed = wait_for(run, CHECKPOINTED, process, logged)
        status = process.wait()
        exited = time.monotonic()
        stops.append(
            {
                "checkpoint_s": None if checkpointed is None else checkpointed - sent,
                "exit_s": exited - sent,
                "status": status,
            }
        )
    if start(run, epochs).wait() != 0:
        raise RuntimeError(f"The last resumed run failed; see {run / 'out.log'}.")
    return stops


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--sigterms", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--window", type=float, default=1.5, help="epochs' time over which kills fall")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    rng = random.Random(arguments.seed)
    with tempfile.TemporaryDirectory() as directory:
        runs = Path(directory)
        seconds = uninterrupted(runs / "uninterrupted", arguments.epochs)
        window = arguments.window * seconds / arguments.epochs
        expected = final_metrics(runs / "uninterrupted")
        after_kills = killed_again_and_again(runs / "killed", arguments.epochs, arguments.kills, window, rng)
        print(f"Uninterrupted: {arguments.epochs} epochs, {seconds:.1f} s of training; kills within {window:.2f} s.")
        print()
        print("| run | stops | final metrics equal the uninterrupted run's |")
        print("|---|---|---|")
        equal = final_metrics(runs / "killed") == expected
        print(f"| SIGKILL | {len(after_kills)} | {'yes' if equal else 'NO'} |")
        if arguments.sigterms:
            stops = terminated(runs / "terminated", arguments.epochs, arguments.sigterms, window, rng)
            equal = final_metrics(runs / "terminated") == expected
            print(f"| SIGTERM | {len(stops)} | {'yes' if equal else 'NO'} |")
        print()
        print("| SIGKILL | checkpoints left |")
        print("|---|---|")
        for number, checkpoints in enumerate(after_kills, 1):
            print(f"| {number} | {checkpoints} |")
        if arguments.sigterms:
            print()
            print("| SIGTERM | checkpoint written after (s) | exited after (s) | exit status |")
            print("|---|---|---|---|")
            for number, stop in enumerate(stops, 1):
                checkpoint = "none" if stop["checkpoint_s"] is None else f"{stop['checkpoint_s']:.3f}"
                print(f"| {number} | {checkpoint} | {stop['exit_s']:.3f} | {stop['status']} |")


if __name__ == "__main__":
    main()
