"""Micro-batching: concurrent requests' inputs run as one forward pass, then go back to their requests.

Requests put their :class:`Inputs` on an asyncio queue; one task takes what is waiting, up to ``max_batch``
inputs, and runs the batch on a single worker thread, so the event loop keeps taking requests while the
model runs (and they queue up for the next batch). When other requests are still being read (``arriving``),
it waits up to ``max_wait`` seconds for them; a lone request never waits: on busy cores a 2 ms timer cost
a lone request ~6 ms (bench/serve.py). A request larger
than ``max_batch`` runs alone (in chunks of ``max_batch``). If a batch fails, its requests run one by
one, so one bad request cannot fail the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from dlcli.training.predict import Inputs


def concat(raws: list[Any]) -> Any:
    """Several requests' raw inputs as one: lists of texts joined, arrays stacked along the first axis."""
    if isinstance(raws[0], list):
        return [item for raw in raws for item in raw]
    return raws[0] if len(raws) == 1 else np.concatenate(raws)


class Batcher:
    """``await batcher.predict(inputs)``: the outputs of ``run_batch(raw)`` for these inputs, micro-batched."""

    def __init__(self, run_batch: Callable[[Any], np.ndarray], max_batch: int, max_wait: float) -> None:
        self.run_batch, self.max_batch, self.max_wait = run_batch, max_batch, max_wait
        self.queue: asyncio.Queue[tuple[Inputs, asyncio.Future]] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="dlcli-serve-model")  # one model, one thread
        self.held: tuple[Inputs, asyncio.Future] | None = None  # taken, but did not fit in the last batch
        self.arriving = 0  # requests being read, not yet queued: worth waiting a moment for
        self.task: asyncio.Task | None = None
        self.batches = 0  # forward passes run (for tests and the bench)
        self.samples = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.executor.shutdown(wait=True)

    def arrive(self) -> None:
        """A request has come in: it will be queued (predict) or refused (left)."""
        self.arriving += 1

    def left(self) -> None:
        self.arriving -= 1

    async def predict(self, inputs: Inputs) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((inputs, future))
        return await future

    async def _next(self, timeout: float | None) -> tuple[Inputs, asyncio.Future] | None:
        if self.held is not None:
            item, self.held = self.held, None
            return item
        if timeout is None:
            return await self.queue.get()
        if not self.queue.empty() or timeout <= 0:
            return self.queue.get_nowait() if not self.queue.empty() else None
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
            return None

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._next(None)]
            size = len(batch[0][0].ids)
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                # what is already queued joins at once; while requests are being read, wait a moment for them
                item = await self._next(deadline - loop.time() if self.arriving else 0)
                if item is None:
                    break
                if size + len(item[0].ids) > self.max_batch:
                    self.held = item  # first in the next batch
                    break
                batch.append(item)
                size += len(item[0].ids)
            batch = [(inputs, future) for inputs, future in batch if not future.cancelled()]  # clients gone
            if batch:
                await self._run(batch)

    async def _run(self, batch: list[tuple[Inputs, asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        raw = concat([inputs.raw for inputs, _ in batch])
        try:
            out = await loop.run_in_executor(self.executor, self.run_batch, raw)
        except Exception as e:  # noqa: BLE001 -- handed to the requests, which answer with it
            if len(batch) == 1:
                _settle(batch[0][1], error=e)
                return
            for item in batch:  # which request failed it: each alone
                await self._run([item])
            return
        self.batches += 1
        self.samples += len(out)
        start = 0
        for inputs, future in batch:
            _settle(future, out[start:start + len(inputs.ids)])
            start += len(inputs.ids)


def _settle(future: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # its client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
