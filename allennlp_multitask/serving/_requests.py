"""Reading `allennlp serve`'s request bodies: bounded in size, parsed as `allennlp predict` parses its lines."""

import json
from typing import Any, List

from starlette.requests import ClientDisconnect, Request

from allennlp_multitask.predictors.multitask import MultiTaskPredictor


class RequestError(Exception):
    """A request the server refuses: answered with `status` and `{"error": message}` (and `index`, where given)."""

    def __init__(self, status: int, message: str, index: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.index = status, message, index


async def read_text(request: Request, max_bytes: int) -> str:
    """The request's body as text; 413 past `max_bytes` (told by Content-Length or found while reading)."""
    too_large = RequestError(
        413, f"The request body is larger than this server takes ({max_bytes} bytes, --max-body-bytes)."
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = bytearray()
    try:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > max_bytes:
                raise too_large
    except ClientDisconnect:
        raise RequestError(400, "The client disconnected before sending the whole request body.") from None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(400, f"The request body is not UTF-8 text: {error}.") from None


def parse_input(predictor: MultiTaskPredictor, text: str) -> Any:
    """The body of `POST /predict`, parsed as `allennlp predict` parses an input line (with its messages)."""
    try:
        return predictor.load_line(text)
    except ValueError as error:
        raise RequestError(400, str(error)) from None


def parse_inputs(text: str, max_inputs: int) -> List[Any]:
    """The body of `POST /predict_batch`: a JSON list of at most `max_inputs` inputs."""
    try:
        inputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(
            400, f"The request body is not JSON ({error.msg}, line {error.lineno} column {error.colno}): {text[:200]!r}"
        ) from None
    if not isinstance(inputs, list):
        raise RequestError(
            400, f"The body of /predict_batch must be a JSON list of inputs, got a JSON {type(inputs).__name__}."
        )
    if len(inputs) > max_inputs:
        raise RequestError(
            413, f"The list holds {len(inputs)} inputs; this server takes at most {max_inputs} (--max-batch-inputs)."
        )
    return inputs
