"""
`allennlp serve` under load: throughput and p50/p99 latency for 1, 8 and 64 concurrent clients sending a
mix of tasks, with dynamic batching (`--batch-size 32`) against one request at a time (`--batch-size 1`,
the way allennlp-server served), on two models: the bundled example (embeddings and an LSTM) and a small
random BERT (2 layers, width 64) fine-tuned by examples/transformer_sentiment_and_topic.jsonnet. Both are
trained here for one epoch first, by `allennlp train` (or `--example-archive` gives the first).

Each client sends `POST /predict` requests one after another for `--seconds`, going through the two
tasks' validation sentences (the example's data, labels left in: the predictor leaves them out); then the
clients stop and wait for their last answers. Every answer is checked against what `allennlp predict`
writes for the same input (`-o '{"model.include_backbone_outputs": false}'`, as the server answers): the
same keys and labels, numbers within 1e-4 (a batch pads its inputs to its longest, which moves the last
digits). A request without a 200 answer, or with a wrong one, counts as lost or wrong: the table shows both.

The clients are one asyncio process on the same machine as the server (raw HTTP/1.1 with keep-alive over
the loopback, the lightest client the standard library allows), so on a small machine they take some of
the server's CPU. The server runs with one torch thread (`--threads`). Run from the repository root (about
four minutes with the defaults):

    uv run --locked --extra test python benchmarks/serve_throughput.py
"""

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from workload import cpu_model, print_table

REPO_ROOT = Path(__file__).resolve().parent.parent
ALLENNLP = str(Path(sys.executable).parent / "allennlp")
DATA = REPO_ROOT / "examples" / "data"
MODELS = ("example", "transformer")
MODES = {"dynamic": None, "one at a time": 1}  # --batch-size: the `--batch-size` option, or 1.
TOLERANCE = 1e-4
TRANSFORMER_WIDTH = 64


def mixed_inputs() -> List[Dict[str, Any]]:
    """The two tasks' validation lines, interleaved, each with its task and an id."""
    tasks = {"sentiment": "sentiment_validation.jsonl", "topic": "topic_validation.jsonl"}
    lines = {task: (DATA / name).read_text().splitlines() for task, name in tasks.items()}
    pairs = [
        (task, line) for both in zip(*[[(task, line) for line in lines[task]] for task in tasks]) for task, line in both
    ]
    return [{"task": task, "id": index, **json.loads(line)} for index, (task, line) in enumerate(pairs)]


def run(command: List[str], environment: Optional[Dict[str, str]] = None) -> None:
    finished = subprocess.run(
        command, cwd=REPO_ROOT, env={**os.environ, **(environment or {})}, capture_output=True, text=True
    )
    if finished.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {finished.stderr[-3000:]}")


def save_random_bert(directory: Path) -> None:
    """A random-init BERT of width 64, two layers, with a WordPiece vocabulary of the example data's words."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({word for path in DATA.glob("*.jsonl") for line in path.open() for word in line.split()})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = [f"##{character}" for character in "abcdefghijklmnopqrstuvwxyz"]
    vocab = [*specials, *[word.strip('",:{}') for word in words if word.isalpha()], *pieces]
    directory.mkdir(parents=True)
    (directory / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    BertTokenizerFast(str(directory / "vocab.txt")).save_pretrained(directory)
    torch.manual_seed(0)
    size = len((directory / "vocab.txt").read_text().split())
    config = BertConfig(
        vocab_size=size,
        hidden_size=TRANSFORMER_WIDTH,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=4 * TRANSFORMER_WIDTH,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(directory)


def train_archive(model: str, work: Path) -> Path:
    """The model trained for one epoch by `allennlp train`; returns its archive."""
    serialization_dir = work / model
    one_epoch = ["-o", json.dumps({"trainer.num_epochs": 1}), "--include-package", "allennlp_multitask"]
    if model == "example":
        run([ALLENNLP, "train", "examples/sentiment_and_topic.jsonnet", "-s", str(serialization_dir), *one_epoch])
    else:
        save_random_bert(work / "random_bert")
        environment = {
            "TRANSFORMER_MODEL": str(work / "random_bert"),
            "TRANSFORMER_HIDDEN_SIZE": str(TRANSFORMER_WIDTH),
        }
        config = "examples/transformer_sentiment_and_topic.jsonnet"
        run([ALLENNLP, "train", config, "-s", str(serialization_dir), *one_epoch], environment)
    return serialization_dir / "model.tar.gz"


def predicted(archive: Path, inputs: List[Dict[str, Any]], work: Path) -> Dict[int, Dict[str, Any]]:
    """What `allennlp predict` writes for each input, by id."""
    (work / "inputs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in inputs))
    output = work / f"{archive.parent.name}_predictions.jsonl"
    options = ["--output-file", str(output), "--silent", "--include-package", "allennlp_multitask"]
    no_backbone = json.dumps({"model.include_backbone_outputs": False})
    run([ALLENNLP, "predict", str(archive), str(work / "inputs.jsonl"), "-o", no_backbone, *options])
    return {line["id"]: line for line in map(json.loads, output.read_text().splitlines())}


def same_output(answer: Any, expected: Any) -> bool:
    """Equal, numbers within `TOLERANCE`."""
    if isinstance(expected, float) or isinstance(answer, float):
        return isinstance(answer, (int, float)) and math.isclose(answer, expected, abs_tol=TOLERANCE)
    if isinstance(expected, list):
        return isinstance(answer, list) and len(answer) == len(expected) and all(map(same_output, answer, expected))
    if isinstance(expected, dict):
        return (
            isinstance(answer, dict)
            and answer.keys() == expected.keys()
            and all(same_output(answer[key], expected[key]) for key in expected)
        )
    return answer == expected


class Server:
    """
    `allennlp serve` on a free loopback port, run from `directory` (no `.allennlp_plugins` there), ready once
    `/ready` answers; stopped with SIGTERM.
    """

    def __init__(self, archive: Path, batch_size: int, threads: int, port: int, directory: Path) -> None:
        self.port = port
        command = [ALLENNLP, "serve", "--archive-path", str(archive), "--port", str(port)]
        command += ["--batch-size", str(batch_size), "--include-package", "allennlp_multitask"]
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        self.process = subprocess.Popen(
            command, cwd=directory, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"allennlp serve exited: {self.process.stderr.read()[-3000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5).close()
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("allennlp serve was not ready within 180 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=60)


@dataclass
class Load:
    """What the clients of one measurement saw."""

    latencies: List[float] = field(default_factory=list)
    lost: int = 0
    wrong: int = 0
    elapsed: float = 0.0


async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> Any:
    """One `POST /predict` on a kept-alive connection; the answer's JSON, or None where the status is not 200."""
    writer.write(
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines if line)
    content = await reader.readexactly(int({key.lower(): value for key, value in headers.items()}["content-length"]))
    return json.loads(content) if status_line.split()[1] == "200" else None


async def client(
    port: int, inputs: List[Dict[str, Any]], first: int, expected: Dict[int, Dict[str, Any]], until: float, load: Load
) -> None:
    """Sends requests one after another, going through the inputs from `first`, until `until`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    position = first
    while time.perf_counter() < until:
        inputs_line = inputs[position % len(inputs)]
        position += 1
        start = time.perf_counter()
        try:
            answer = await post(reader, writer, json.dumps(inputs_line).encode())
        except (ConnectionError, asyncio.IncompleteReadError, KeyError, ValueError):
            load.lost += 1
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            continue
        if answer is None:
            load.lost += 1
            continue
        load.latencies.append(time.perf_counter() - start)
        if not same_output(answer, expected[inputs_line["id"]]):
            load.wrong += 1
    writer.close()


async def measure(port: int, clients: int, seconds: float, inputs: List[Dict[str, Any]], expected: Dict) -> Load:
    load = Load()
    start = time.perf_counter()
    spread = len(inputs) // clients or 1
    workers = [client(port, inputs, index * spread, expected, start + seconds, load) for index in range(clients)]
    await asyncio.gather(*workers)
    load.elapsed = time.perf_counter() - start
    return load


def percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(arguments: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", choices=MODELS, nargs="+", default=list(MODELS))
    parser.add_argument("--example-archive", type=Path, help="the example's archive, rather than training one")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64], help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long each measurement sends requests")
    parser.add_argument("--batch-size", type=int, default=32, help="the dynamic batching server's --batch-size")
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads (OMP_NUM_THREADS)")
    args = parser.parse_args(arguments)

    from allennlp.common.util import find_open_port

    print(
        f"CPU: {cpu_model()}; torch {torch.__version__}; server with {args.threads} thread(s); clients "
        f"{args.clients} for {args.seconds:g} s each; dynamic: --batch-size {args.batch_size}.",
        flush=True,
    )
    inputs = mixed_inputs()
    header = [
        "model",
        "clients",
        "serving",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "vs one at a time",
        "lost",
        "wrong",
    ]
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        for model in args.models:
            given = args.example_archive if model == "example" else None
            archive = given.resolve() if given else train_archive(model, work)
            expected = predicted(archive, inputs, work)
            rates: Dict[int, float] = {}
            for mode, batch_size in reversed(MODES.items()):  # One at a time first: the others' baseline.
                server = Server(archive, batch_size or args.batch_size, args.threads, find_open_port(), work)
                try:
                    for clients in args.clients:
                        load = asyncio.run(measure(server.port, clients, args.seconds, inputs, expected))
                        answered = len(load.latencies)
                        rate = answered / load.elapsed
                        rates.setdefault(clients, rate)
                        rows.append(
                            [
                                model,
                                str(clients),
                                f"{mode} (--batch-size {batch_size or args.batch_size})",
                                str(answered + load.lost),
                                f"{rate:.0f}",
                                f"{1000 * statistics.median(load.latencies):.1f}",
                                f"{1000 * percentile(load.latencies, 0.99):.1f}",
                                f"x{rate / rates[clients]:.2f}",
                                str(load.lost),
                                str(load.wrong),
                            ]
                        )
                        print(f"  measured {model}, {mode}, {clients} clients", flush=True)
                finally:
                    server.stop()
    print()
    print_table(header, rows)


if __name__ == "__main__":
    main()
