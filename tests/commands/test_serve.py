"""
`allennlp serve` over real HTTP: a server process per test module (two for the workers' test), serving the
transformer example trained for an epoch on a tiny random BERT (64 positions: a longer input fails in the model).
"""

import json
import signal
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from allennlp.commands.train import train_model_from_file
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor

from tests.commands.runs import DATA, predict
from tests.commands.servers import Server, read_response
from tests.conftest import REPO_ROOT
from tests.predictors.multitask_outputs import assert_same_head_outputs

pytestmark = [pytest.mark.slow, pytest.mark.subprocess, pytest.mark.once]

LEAN = ["-o", json.dumps({"model.include_backbone_outputs": False})]
MAX_BODY_BYTES = 4096
MAX_BATCH_INPUTS = 16
# 100 words: 102 word pieces, past the tiny BERT's 64 positions (its tokenizer cuts at the config's 128).
TOO_LONG = {"task": "sentiment", "sentence": " ".join(["the"] * 100)}


def mixed_inputs(count: int) -> List[Dict[str, Any]]:
    """`count` inputs of both tasks, each with its own id."""
    examples = [json.loads(line) for line in (REPO_ROOT / DATA / "predict_inputs.jsonl").read_text().splitlines()]
    return [{**examples[number % len(examples)], "id": f"input-{number}"} for number in range(count)]


def assert_answered(answers: List[Any], inputs: List[Dict[str, Any]], alone: List[Dict[str, Any]]) -> None:
    """Each input got its own answer (its id and task), with the outputs it gets alone (up to float noise)."""
    assert len(answers) == len(inputs)
    for line, expected, (status, answer) in zip(inputs, alone, answers):
        assert status == 200 and (answer["id"], answer["task"]) == (line["id"], line["task"]), answer
        assert_same_head_outputs(answer, expected)


@pytest.fixture(scope="module")
def archive(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("transformer_run")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(REPO_ROOT)
        monkeypatch.setenv("TRANSFORMER_MODEL", str(tiny_bert_dir))
        monkeypatch.setenv("TRANSFORMER_HIDDEN_SIZE", "16")
        config = str(REPO_ROOT / "examples" / "transformer_sentiment_and_topic.jsonnet")
        train_model_from_file(config, str(run), overrides=json.dumps({"trainer.num_epochs": 1}))
    return run / "model.tar.gz"


@pytest.fixture(scope="module")
def server(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    options = ["--batch-size", "8", "--max-wait-ms", "50", "--max-body-bytes", str(MAX_BODY_BYTES)]
    running = Server(
        archive, tmp_path_factory.mktemp("anywhere"), *options, "--max-batch-inputs", str(MAX_BATCH_INPUTS)
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def predictor(archive: Path) -> Predictor:
    """The archive's predictor as `allennlp predict` makes it, for the messages it gives."""
    return Predictor.from_archive(load_archive(str(archive)), "multitask")


def test_outputs_are_allennlp_predicts(server, archive, tmp_path, in_repo_root, monkeypatch):
    inputs = tmp_path / "inputs.jsonl"
    lines = mixed_inputs(6)
    inputs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    one_by_one = predict(archive, str(inputs), tmp_path / "single.jsonl", *LEAN, monkeypatch=monkeypatch)
    assert [server.request("/predict", line) for line in lines] == [(200, output) for output in one_by_one]
    # A list runs as one batch, as `allennlp predict --batch-size` runs it.
    batched = predict(
        archive, str(inputs), tmp_path / "batch.jsonl", "--batch-size", "6", *LEAN, monkeypatch=monkeypatch
    )
    assert server.request("/predict_batch", lines) == (200, batched)
    # The backbone's outputs, asked for.
    full = predict(archive, str(inputs), tmp_path / "full.jsonl", monkeypatch=monkeypatch)
    assert server.request("/predict?include_backbone=true", lines[0]) == (200, full[0])


def test_health_readiness_tasks_page_and_openapi(server):
    assert server.request("/health") == (200, {"status": "ok"})
    assert server.request("/ready") == (200, {"status": "ready"})
    status, tasks = server.request("/tasks")
    assert status == 200 and tasks.keys() == {"tasks"} and tasks["tasks"].keys() == {"sentiment", "topic"}
    for task, text_key in [("sentiment", "sentence"), ("topic", "question")]:
        served = tasks["tasks"][task]
        assert (served["heads"], served["inputs"]) == ([task], [text_key])
        # The label names by index, as the head's probabilities are ordered: each prediction's label is its top one.
        status, output = server.request("/predict", {"task": task, text_key: "a good question about the weather"})
        names = tasks["tasks"][task]["labels"][task]
        probs = output[f"{task}_probs"]
        assert status == 200 and len(names) == len(probs) and names[probs.index(max(probs))] == output[f"{task}_label"]
    status, description = server.request("/openapi.json")
    assert status == 200 and {"/predict", "/predict_batch", "/tasks"} <= description["paths"].keys()
    with urllib.request.urlopen(server.url + "/") as page:
        assert b"<html" in page.read().lower()


# Lines that are JSON, but not an input `allennlp predict` takes.
BAD_INPUTS = {
    "not an object": '["sentiment", "good"]',
    "unknown task": '{"task": "weather", "sentence": "sunny"}',
    "no task": '{"sentence": "good"}',
    "missing key": '{"task": "sentiment", "text": "good"}',
    "empty text": '{"task": "sentiment", "sentence": ""}',
    "number for text": '{"task": "sentiment", "sentence": 7}',
}
MALFORMED = '{"task": "sentiment", "sentence": "good"'


def allennlp_predicts_error(predictor: Predictor, line: str) -> str:
    """The message of the error `allennlp predict` raises for `line` (it reads lines with `load_line`)."""
    with pytest.raises(ValueError) as refused:
        predictor.predict_json(predictor.load_line(line))
    return str(refused.value)


@pytest.mark.parametrize("line", [*BAD_INPUTS.values(), MALFORMED], ids=[*BAD_INPUTS, "malformed JSON"])
def test_a_bad_input_is_a_400_with_allennlp_predicts_message(server, predictor, line):
    message = allennlp_predicts_error(predictor, line)
    assert server.request("/predict", raw=line.encode()) == (400, {"error": message})
    assert server.request("/health") == (200, {"status": "ok"})


@pytest.mark.parametrize("line", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_a_bad_input_in_a_list_is_a_400_naming_it(server, predictor, line):
    # The message of the predictor's predict_batch_json, for a list holding the input.
    with pytest.raises(ValueError) as refused:
        predictor.predict_batch_json([json.loads(line)])
    message = str(refused.value)
    status, answer = server.request("/predict_batch", raw=f'[{{"task": "topic", "question": "what"}}, {line}]'.encode())
    assert (status, answer) == (400, {"error": f"Input 1 of the list: {message}", "index": 1})


def test_a_list_that_is_not_json_is_a_400(server):
    status, answer = server.request("/predict_batch", raw=f"[{MALFORMED}]".encode())
    assert status == 400 and answer["error"].startswith("The request body is not JSON (Expecting ',' delimiter")


def test_bodies_and_lists_too_large_are_413s(server):
    large = {"task": "sentiment", "sentence": "good " * MAX_BODY_BYTES}
    status, answer = server.request("/predict", large)
    assert status == 413 and "--max-body-bytes" in answer["error"]
    # Sent in chunks, with no length given first.
    connection = server.raw_connection()
    head = "POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    chunk = b"x" * 1000
    connection.sendall(head.encode() + (b"3e8\r\n" + chunk + b"\r\n") * 5 + b"0\r\n\r\n")
    assert read_response(connection)[0] == 413
    status, answer = server.request("/predict_batch", mixed_inputs(MAX_BATCH_INPUTS + 1))
    assert status == 413 and "--max-batch-inputs" in answer["error"]
    status, answer = server.request("/predict_batch", raw=b'{"task": "topic"}')
    assert (status, answer) == (
        400,
        {"error": "The body of /predict_batch must be a JSON list of inputs, got a JSON dict."},
    )
    assert server.request("/predict_batch", mixed_inputs(MAX_BATCH_INPUTS))[0] == 200


def test_concurrent_requests_of_mixed_tasks_share_forward_passes(server):
    inputs = mixed_inputs(32)
    alone = [server.request("/predict", line)[1] for line in inputs]
    before = server.request("/stats")[1]
    start = threading.Barrier(len(inputs))

    def send(line: Dict[str, Any]) -> Any:
        start.wait()
        return server.request("/predict", line)

    with ThreadPoolExecutor(len(inputs)) as pool:
        answers = list(pool.map(send, inputs))
    after = server.request("/stats")[1]
    assert_answered(answers, inputs, alone)
    assert after["predictions"] - before["predictions"] == len(inputs)
    assert after["forward_passes"] - before["forward_passes"] < len(inputs) / 2, (before, after)


def test_an_input_the_model_fails_on_fails_alone(server):
    inputs = mixed_inputs(7)
    alone = [server.request("/predict", line)[1] for line in inputs]
    start = threading.Barrier(len(inputs) + 1)

    def send(line: Dict[str, Any]) -> Any:
        start.wait()
        return server.request("/predict", line)

    with ThreadPoolExecutor(len(inputs) + 1) as pool:
        answers = list(pool.map(send, [*inputs, TOO_LONG]))
    *good, (status, failure) = answers
    assert status == 422 and failure["error"].startswith("The model failed on this input: RuntimeError"), failure
    assert_answered(good, inputs, alone)
    status, failure = server.request("/predict_batch", [inputs[0], TOO_LONG])
    assert status == 422 and failure["index"] == 1 and failure["error"].startswith("Input 1 of the list: The model")


def test_clients_that_disconnect_leave_the_others_answered(server):
    inputs = mixed_inputs(8)
    alone = [server.request("/predict", line)[1] for line in inputs]
    body = json.dumps(inputs[0]).encode()
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()

    def leave_mid_body() -> None:
        with server.raw_connection() as connection:
            connection.sendall(head + body[:10])

    def leave_before_the_answer() -> None:
        with server.raw_connection() as connection:
            connection.sendall(head + body)

    with ThreadPoolExecutor(16) as pool:
        left = [pool.submit(leave_mid_body), pool.submit(leave_before_the_answer)] * 4
        answers = list(pool.map(lambda line: server.request("/predict", line), inputs))
        for leaving in left:
            leaving.result()
    assert_answered(answers, inputs, alone)
    assert server.request("/predict", inputs[1]) == (200, alone[1])
    assert server.process.poll() is None


def in_flight_request(server: Server, line: Dict[str, Any]) -> Any:
    """A connection with a request of `line` whose body is half sent: the rest goes by `send_rest()`."""
    body = json.dumps(line).encode()
    connection = server.raw_connection()
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    connection.sendall(head.encode() + body[:10])

    def send_rest() -> Any:
        connection.sendall(body[10:])
        with connection:
            return read_response(connection)

    return send_rest


def assert_sigterm_finishes_in_flight_requests(server: Server) -> None:
    line = mixed_inputs(1)[0]
    expected = server.request("/predict", line)
    send_rest = in_flight_request(server, line)
    server.process.send_signal(signal.SIGTERM)
    threading.Event().wait(1)  # the server has begun to shut down
    assert send_rest() == expected
    assert server.stop() == 0
    assert "Finished server process" in "".join(server.output)


def test_sigterm_finishes_the_requests_in_flight_then_exits_0(server):
    # This module's last use of its server.
    assert_sigterm_finishes_in_flight_requests(server)


def test_workers_share_one_port_and_run_the_heads_asked_for(archive, tmp_path, in_repo_root, monkeypatch):
    anywhere = tmp_path / "anywhere"
    anywhere.mkdir()
    workers = Server(archive, anywhere, "--max-wait-ms", "20", "--active-heads", "sentiment", workers=2)
    try:
        assert len({line.split("worker process ")[1] for line in workers.ready_lines()}) == 2
        inputs = mixed_inputs(16)
        lines = tmp_path / "inputs.jsonl"
        lines.write_text("".join(json.dumps(line) + "\n" for line in inputs))
        overrides = json.dumps({"model.include_backbone_outputs": False, "model.active_heads": ["sentiment"]})
        expected = predict(archive, str(lines), tmp_path / "out.jsonl", "-o", overrides, monkeypatch=monkeypatch)
        with ThreadPoolExecutor(len(inputs)) as pool:
            assert_answered(list(pool.map(lambda line: workers.request("/predict", line), inputs)), inputs, expected)
        assert workers.request("/tasks")[1]["tasks"]["topic"]["heads"] == []
        assert_sigterm_finishes_in_flight_requests(workers)
    finally:
        workers.stop()
