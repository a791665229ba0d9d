"""
The ASGI application of `allennlp serve` (FastAPI): allennlp-server's `POST /predict` and `POST /predict_batch`,
with `GET /health`, `/ready`, `/tasks`, `/stats`, the page at `/`, and FastAPI's `/openapi.json` and `/docs`.

Every error is answered as JSON `{"error": message}`: 400 for an input `allennlp predict` would refuse (with its
message), 413 for a body or list too large, 422 for an input the model fails on, 500 for a failure of the server.
"""

import asyncio
import json
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from allennlp_multitask.models.multitask import MultiTaskModel
from allennlp_multitask.predictors.multitask import MultiTaskPredictor
from allennlp_multitask.serving._requests import RequestError, parse_input, parse_inputs, read_text
from allennlp_multitask.serving.batcher import DynamicBatcher, Failure
from allennlp_multitask.serving.loading import load_predictor
from allennlp_multitask.serving.settings import ServeSettings

PAGE = Path(__file__).parent / "static" / "index.html"

_JSON_BODY = {"required": True, "content": {"application/json": {"schema": {}}}}
_INPUT = {
    "type": "object",
    "properties": {"task": {"type": "string"}, "id": {}},
    "required": ["task"],
    "additionalProperties": True,
    "example": {"task": "sentiment", "id": 1, "sentence": "the film was great"},
}
_PREDICT_BODY = {"requestBody": {**_JSON_BODY, "content": {"application/json": {"schema": _INPUT}}}}
_PREDICT_BATCH_BODY = {
    "requestBody": {**_JSON_BODY, "content": {"application/json": {"schema": {"type": "array", "items": _INPUT}}}}
}


def _predictions(outputs: Any) -> Response:
    """Outputs written as `allennlp predict` writes them (`json.dumps`, which also writes NaN and infinities)."""
    return Response(json.dumps(outputs), media_type="application/json")


def _error(status: int, message: str, index: Any = None) -> JSONResponse:
    return JSONResponse({"error": message, **({"index": index} if index is not None else {})}, status_code=status)


def _label_names(model: MultiTaskModel, head: str) -> List[str]:
    """The labels of `head` by their index (a classifier's `probs`, a tagger's `class_probabilities`), if it has any."""
    namespace = getattr(model._heads[head], "_label_namespace", None)
    if namespace is None:
        return []
    by_index = model.vocab.get_index_to_token_vocabulary(namespace)
    return [by_index[index] for index in range(len(by_index))]


def create_app(settings: ServeSettings) -> FastAPI:
    """The application serving `settings.archive_path`; it loads the model as it starts (its lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        predictor = await asyncio.to_thread(load_predictor, settings)
        batcher = DynamicBatcher(predictor, settings.batch_size, settings.max_wait_ms / 1000)
        batcher.start()
        app.state.predictor, app.state.batcher = predictor, batcher
        worker = f" (worker process {os.getpid()})" if settings.workers > 1 else ""
        print(f"allennlp serve: {settings.archive_path} ready at {settings.url}{worker}", flush=True)
        yield
        await batcher.stop()

    app = FastAPI(
        title="allennlp serve",
        description="A multitask model's predictions, batched across concurrent requests (allennlp_multitask).",
        lifespan=lifespan,
    )
    _add_error_handlers(app)
    _add_routes(app, settings)
    return app


def app_from_environment() -> FastAPI:
    """The application of the settings the command put in the environment (uvicorn's factory for each worker)."""
    return create_app(ServeSettings.from_environment())


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def refused(request: Request, error: RequestError) -> JSONResponse:
        return _error(error.status, error.message, error.index)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors())
        return _error(400, f"Invalid request: {problems}.")


def _add_routes(app: FastAPI, settings: ServeSettings) -> None:
    def predictor() -> MultiTaskPredictor:
        return app.state.predictor

    def batcher() -> DynamicBatcher:
        return app.state.batcher

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        if not PAGE.exists():
            raise HTTPException(404, "This installation has no page.")
        return FileResponse(PAGE)

    @app.get("/health", summary="Liveness: the server answers.")
    async def health() -> Dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: the model is loaded (the server answers only once it is).")
    async def ready() -> Dict[str, str]:
        return {"status": "ready"}

    @app.get(
        "/tasks",
        summary="The model's tasks: the active heads that serve each, the input keys it takes, and the names of "
        "its heads' labels in the order of their probabilities.",
    )
    async def tasks() -> Dict[str, Dict[str, Dict[str, Any]]]:
        served = predictor()
        model = cast(MultiTaskModel, served._model)
        active = set(model.active_heads)
        answer: Dict[str, Dict[str, Dict[str, Any]]] = {"tasks": {}}
        for task in served.tasks:
            heads = [head for head in model.task_heads[task] if head in active]
            labels = {head: _label_names(model, head) for head in heads}
            answer["tasks"][task] = {
                "heads": heads,
                "inputs": served.input_keys(task),
                "labels": {head: names for head, names in labels.items() if names},
            }
        return answer

    @app.get("/stats", summary="The predictions this worker process made, and the forward passes they took.")
    async def stats() -> Dict[str, int]:
        counts = batcher().stats
        return {
            "predictions": counts.predictions,
            "forward_passes": counts.forward_passes,
            "largest_batch": counts.largest_batch,
        }

    @app.post(
        "/predict",
        summary="One input (a JSON object, as a line of `allennlp predict`'s input) to its prediction.",
        openapi_extra=_PREDICT_BODY,
    )
    async def predict(request: Request, include_backbone: bool = False) -> Response:
        json_dict = parse_input(predictor(), await read_text(request, settings.max_body_bytes))
        (result,) = await batcher().predict([json_dict], include_backbone)
        if isinstance(result, Failure):
            raise RequestError(result.status, result.message)
        return _predictions(result)

    @app.post(
        "/predict_batch",
        summary="A JSON list of inputs to the list of their predictions, in order.",
        openapi_extra=_PREDICT_BATCH_BODY,
    )
    async def predict_batch(request: Request, include_backbone: bool = False) -> Response:
        inputs = parse_inputs(await read_text(request, settings.max_body_bytes), settings.max_batch_inputs)
        results = await batcher().predict(inputs, include_backbone)
        for index, result in enumerate(results):
            if isinstance(result, Failure):
                raise RequestError(result.status, f"Input {index} of the list: {result.message}", index)
        return _predictions(results)
