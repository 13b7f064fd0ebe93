"""The FastAPI app of ``dlcli serve``: ``POST /predict``, ``GET /health``, ``GET /metadata``, docs at ``/docs``.

Built around one loaded run and one model (:func:`load_model`); :func:`create_app` is what the command
and the tests call, :func:`app_from_env` what each uvicorn worker process calls with ``--workers N``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dlcli.errors import DataError, DlcliError
from dlcli.serve.batcher import Batcher
from dlcli.serve.inputs import TooLarge, image_uploads, json_inputs, results
from dlcli.serve.schema import metadata
from dlcli.training.predict import Inputs, check_predictable
from dlcli.training.reload import LoadedRun, load_run

MAX_BODY = 16 * 1024 * 1024  # bytes a request body may have (413 beyond): a few thousand rows, or a few images
# a request up to these sizes is read and answered on the event loop: quicker than a thread hop
INLINE_BYTES, INLINE_INPUTS = 64 * 1024, 256
ENV = "DLCLI_SERVE"  # the settings each uvicorn worker process reads (--workers N), as JSON


class PredictRequest(BaseModel):
    """One item per input: a record (column -> value), a nested array, or a text."""

    model_config = ConfigDict(extra="forbid")
    inputs: list[Any] = Field(description="one item per input: a record {column: value} (table runs), a nested "
                                          "array of numbers (sequence and image runs), or a string (text runs)",
                              examples=[[{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4,
                                          "petal_width": 0.2}]])


class Prediction(BaseModel):
    id: Any
    label: Any | None = None
    probabilities: dict[str, float] | None = None
    value: float | list[float] | None = None


class PredictResponse(BaseModel):
    run: str
    predictions: list[Prediction]


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, f"request body over {MAX_BODY:,} bytes: send fewer inputs per request")


def load_model(run: LoadedRun, backend: str, checkpoint: str, max_batch: int,
               threads: int = 1) -> Callable[[Any], np.ndarray]:
    """``raw inputs -> outputs`` through LoadedRun.predict (the run's preprocessing), with the torch checkpoint or
    the run's ONNX export (made if missing, in ``<run>/export/``, where ``dlcli export`` puts it)."""
    check_predictable(run)
    run.checkpoint_path(checkpoint)
    if backend == "torch":
        run.loaded_module(checkpoint)  # loads the checkpoint now: a broken one stops the server before it listens
        return lambda raw: run.predict(raw, batch_size=max_batch, checkpoint=checkpoint)
    if backend != "onnx":
        raise DlcliError(f"--backend is torch or onnx, got '{backend}'")
    forward = _onnx_forward(run, checkpoint, threads)
    return lambda raw: run.predict(raw, batch_size=max_batch, checkpoint=checkpoint, forward=forward)


def _onnx_forward(run: LoadedRun, checkpoint: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import importlib.util

    from dlcli.runs import folder
    from dlcli.training.export import TOLERANCE, export

    if importlib.util.find_spec("onnxruntime") is None:
        raise DlcliError("--backend onnx needs onnxruntime: pip install \"dlcli[export]\"")
    path = run.run_dir / "export" / "model.onnx"
    meta = path.with_suffix(".preprocessing.json")
    current = path.is_file() and meta.is_file() and folder.read_json(meta).get("checkpoint") == checkpoint
    if not current:  # as `dlcli export RUN` would write it, checked against PyTorch
        result = export(run, "onnx", None, checkpoint)
        if not result.ok:
            raise DlcliError(f"the ONNX export of run {run.run_dir.name} differs from PyTorch by "
                             f"{result.max_abs_diff:.2e} (tolerance {TOLERANCE:g}): serve it with --backend torch")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"x": x})[0]


def default_threads(workers: int) -> int:
    """CPU threads for one worker's model: this machine's cores shared among the worker processes."""
    from dlcli.training.threads import cores

    return max(1, cores() // max(1, workers))


def create_app(run: LoadedRun, backend: str = "torch", checkpoint: str = "best", max_batch: int = 64,
               max_wait_ms: float = 2.0, threads: int = 1) -> FastAPI:
    """The app serving ``run``: its model is loaded here, before any request, to run on ``threads`` CPU threads."""
    import torch

    torch.set_num_threads(threads)
    run_id = run.run_dir.name
    model = load_model(run, backend, checkpoint, max_batch, threads)
    batcher = Batcher(model, max_batch, max_wait_ms / 1000)
    info = metadata(run, backend, checkpoint, max_batch)
    info["serving"]["threads"] = threads

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title=f"dlcli serve {run_id}", lifespan=lifespan,
                  description=f"Predictions of dlcli run {run_id} ({run.task}), with its training preprocessing.")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return _validation_error(exc.errors())

    @app.get("/health")
    async def health() -> dict[str, str]:
        """200 while the server takes requests."""
        return {"status": "ok", "run": run_id}

    @app.get("/metadata")
    async def get_metadata() -> dict[str, Any]:
        """The run: task, classes, the inputs it takes, its preprocessing and test metrics."""
        return {**info, "serving": {**info["serving"], "forward_passes": batcher.batches,
                                    "inputs_predicted": batcher.samples}}

    @app.post("/predict", response_model=None, responses={
        200: {"model": PredictResponse}, 413: {"description": "body or image over the size limit"},
        422: {"description": "an input that does not fit the run, naming it: inputs[3].sepal_length: ..."}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": PredictRequest.model_json_schema()},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}})
    async def predict(request: Request) -> JSONResponse:
        """Predict for a JSON body `{"inputs": [...]}`, or for images uploaded as multipart fields `file`."""
        try:
            batcher.arrive()
            try:
                inputs = await _read(request, run)
            finally:
                batcher.left()
            out = await batcher.predict(inputs)
            rows = await _off_loop(len(inputs.ids) > INLINE_INPUTS, results, run, inputs.ids, out)
        except _Invalid as e:
            return _validation_error(e.errors)
        except TooLarge as e:
            return JSONResponse({"detail": str(e)}, status_code=413)
        except DataError as e:
            return JSONResponse({"detail": str(e)}, status_code=422)
        except DlcliError as e:
            return JSONResponse({"detail": str(e)}, status_code=400)
        return JSONResponse({"run": run_id, "predictions": rows})

    return app


async def _off_loop(heavy: bool, function: Callable, *args: Any) -> Any:
    """``function(*args)`` on a worker thread when ``heavy``; else at once on the event loop, as handing a small
    request's work to a thread costs more (~1-5 ms on busy cores) than the work (~0.05 ms)."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args) if heavy else function(*args)


async def _read(request: Request, run: LoadedRun) -> Inputs:
    """The request's inputs: decoded and checked off the event loop when the body is large (images, many rows)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise BodyTooLarge()
    body = bytearray()
    async for chunk in request.stream():  # a body without Content-Length is counted as it comes
        body += chunk
        if len(body) > MAX_BODY:
            raise BodyTooLarge()
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        files = await _uploads(request, bytes(body))
        return await _off_loop(True, image_uploads, run, files)
    try:
        parsed = PredictRequest.model_validate_json(bytes(body))
    except ValidationError as e:
        raise _Invalid(e.errors()) from None
    return await _off_loop(len(body) > INLINE_BYTES, json_inputs, run, parsed.inputs)


async def _uploads(request: Request, body: bytes) -> list[tuple[str, bytes]]:
    """The ``file`` fields of a multipart body: (file name, bytes) each."""
    from starlette.datastructures import UploadFile
    from starlette.requests import Request as StarletteRequest

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await StarletteRequest(request.scope, receive).form()
    try:
        fields = form.getlist("file")
        if any(not isinstance(f, UploadFile) for f in fields):
            raise DataError("file: a multipart field 'file' holds text; upload image files in it")
        return [(f.filename or f"file {i}", await f.read()) for i, f in enumerate(fields)]
    finally:
        await form.close()


class _Invalid(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors


def _validation_error(errors: Any) -> JSONResponse:
    """422 naming each bad field: ``inputs: Field required``."""
    # without "input" (it can be the whole body) and "url"
    errors = [{k: v for k, v in e.items() if k not in ("input", "url")} for e in errors]
    errors = jsonable_encoder(errors, custom_encoder={ValueError: str})
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
             for e in errors]
    return JSONResponse({"detail": "; ".join(parts), "errors": errors}, status_code=422)


def app_from_env() -> FastAPI:
    """The app for one uvicorn worker process (``--workers N``), from the settings the command left in ENV."""
    settings = json.loads(os.environ[ENV])
    run = load_run(settings.pop("run"), settings.pop("output_dir"))
    return create_app(run, **settings)
