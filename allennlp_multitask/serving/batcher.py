"""
Dynamic batching for `allennlp serve`: inputs of concurrent requests, of any mix of tasks, run as one forward pass.

Requests put their JSON inputs in a queue. One worker task takes the first waiting input, gathers more until it
has `batch_size` of them or `max_wait_s` has passed since it took the first, and runs them in a thread (one
model call at a time, the event loop free to take requests meanwhile): each input becomes an instance (an input
that makes none fails alone, at once), the instances go through ONE `predict_batch_instance`, and each input's
future gets exactly its own output. If the model fails on the batch, its inputs run one by one, so that only
the input that fails alone gets the error.
"""

import asyncio
import collections
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Deque, Dict, List, Optional, Sequence, Union

from allennlp.common.util import JsonDict
from allennlp.data import Instance

from allennlp_multitask.models.multitask import MultiTaskModel
from allennlp_multitask.predictors.multitask import INPUT_ERRORS, MultiTaskPredictor, with_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """Why an input got no prediction, and the HTTP status that says so."""

    status: int
    message: str


Result = Union[JsonDict, Failure]


@dataclass(frozen=True)
class _Input:
    json: JsonDict
    include_backbone: bool
    future: "asyncio.Future[Result]"


@dataclass
class BatchStats:
    """What the server has run so far (`GET /stats`): the predictions made and the forward passes they took."""

    predictions: int = 0
    forward_passes: int = 0
    largest_batch: int = 0


class DynamicBatcher:
    """
    Gathers the inputs of concurrent requests into batches of up to `batch_size` inputs, waiting at most
    `max_wait_s` for the first input's batch to fill, and predicts each batch with one forward pass of
    `predictor`'s model. `start` and `stop` run within the server's event loop.
    """

    def __init__(self, predictor: MultiTaskPredictor, batch_size: int, max_wait_s: float) -> None:
        self._predictor = predictor
        self._model: MultiTaskModel = predictor._model
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._waiting: Deque[_Input] = collections.deque()
        self._arrived = asyncio.Event()
        # One thread: one model call at a time.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="allennlp-serve-model")
        self._worker: Optional[asyncio.Task] = None
        self.stats = BatchStats()

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="allennlp-serve-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def predict(self, inputs: Sequence[JsonDict], include_backbone: bool = False) -> List[Result]:
        """The prediction for each of `inputs` (JSON objects as `allennlp predict` reads them), or its failure."""
        loop = asyncio.get_running_loop()
        queued = [_Input(json_dict, include_backbone, loop.create_future()) for json_dict in inputs]
        self._waiting.extend(queued)
        self._arrived.set()
        # Cancelled (the client went away), the futures are cancelled too and the worker skips their inputs.
        return list(await asyncio.gather(*(queued_input.future for queued_input in queued)))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch(loop)
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self._predict, batch)
            except Exception as error:  # a failure of the batcher itself: answer the batch, keep serving
                logger.exception("allennlp serve: a batch failed outside the model")
                results = [Failure(500, f"The server failed on this batch: {type(error).__name__}: {error}")] * len(
                    batch
                )
            for queued, result in zip(batch, results):
                if not queued.future.done():
                    queued.future.set_result(result)

    async def _next_batch(self, loop: asyncio.AbstractEventLoop) -> List[_Input]:
        """Waits for an input, then gathers up to `batch_size` inputs, for at most `max_wait_s`."""
        while not self._waiting:
            self._arrived.clear()
            await self._arrived.wait()
        deadline = loop.time() + self._max_wait_s
        batch: List[_Input] = []
        while True:
            while self._waiting and len(batch) < self._batch_size:
                queued = self._waiting.popleft()
                if not queued.future.done():  # not cancelled
                    batch.append(queued)
            remaining = deadline - loop.time()
            if len(batch) >= self._batch_size or remaining <= 0:
                return batch
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def _predict(self, batch: List[_Input]) -> List[Result]:
        """In the model's thread: the result of each input of `batch`."""
        results: Dict[int, Result] = {}
        instances: Dict[int, Instance] = {}
        for position, queued in enumerate(batch):
            try:  # the predictor's hook for one input, as its predict_json and predict_batch_json call it
                instances[position] = self._predictor._json_to_instance(queued.json)
            except INPUT_ERRORS as error:
                results[position] = Failure(400, str(error))
            except Exception as error:  # a reader's own failure on this input
                logger.exception("allennlp serve: an input made no instance")
                results[position] = Failure(422, f"The input makes no instance: {type(error).__name__}: {error}")
        if instances:
            results.update(self._predict_instances(batch, instances))
        return [results[position] for position in range(len(batch))]

    def _predict_instances(self, batch: List[_Input], instances: Dict[int, Instance]) -> Dict[int, Result]:
        if len(instances) == 1:
            ((position, instance),) = instances.items()
            return {position: self._predict_alone(batch[position], instance)}
        include_backbone = any(batch[position].include_backbone for position in instances)
        try:
            outputs = self._forward(list(instances.values()), include_backbone)
        except Exception:
            logger.warning(
                "allennlp serve: the model failed on a batch of %d; running its inputs one by one", len(instances)
            )
            return {
                position: self._predict_alone(batch[position], instance) for position, instance in instances.items()
            }
        return {position: self._answer(batch[position], output) for position, output in zip(instances, outputs)}

    def _predict_alone(self, queued: _Input, instance: Instance) -> Result:
        try:
            (output,) = self._forward([instance], queued.include_backbone)
        except Exception as error:
            logger.exception("allennlp serve: the model failed on an input")
            return Failure(422, f"The model failed on this input: {type(error).__name__}: {error}")
        return self._answer(queued, output)

    def _forward(self, instances: List[Instance], include_backbone: bool) -> List[JsonDict]:
        self._model.include_backbone_outputs = include_backbone
        self.stats.forward_passes += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(instances))
        return self._predictor.predict_batch_instance(instances)

    def _answer(self, queued: _Input, output: JsonDict) -> JsonDict:
        self.stats.predictions += 1
        if not queued.include_backbone:
            for name in self._model.backbone_outputs(output):
                del output[name]
        return with_id(queued.json, output)
