"""``graft serve``: a saved model behind HTTP (FastAPI + uvicorn, the optional extra ``serve``).

Endpoints:

- ``GET /health``: ``{"status": "ok", "task": ..., "outputs": [...], "requests": n, "batches": m}``.
- ``POST /predict``: image uploads (``multipart/form-data``, any field name, one or many files)
  or JSON (``{"paths": [...]}`` or a bare list) naming files under the server's ``root``. Query
  parameter ``mc_samples=N`` adds the MC-dropout spread. Answers
  ``{"predictions": [{"file": ..., "prediction": ..., "probability": ...}, ...]}``.

Concurrent requests are batched: each decoded image joins a queue, and one worker takes what
arrived within ``max_wait_ms`` (at most ``max_batch`` images) through the model in one pass.
Bad input is a 4xx with a message, never a stack trace: 413 (too large or too many files), 415
(wrong content type or not an image), 403 (a path outside ``root``), 404 (no such file), 422
(malformed JSON or query). The server binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from graft.data import build_transform
from graft.data.transforms import to_mode
from graft.errors import ConfigError, GraftError
from graft.model import GraftModel, load


@dataclass(frozen=True)
class ServeLimits:
    """What a request may hold.

    Args:
        max_file_bytes: largest accepted image file.
        max_files: most images in one request.
        max_pixels: largest decoded image (width x height), against decompression bombs.
        max_mc_samples: most MC-dropout passes a request may ask for.
    """

    max_file_bytes: int = 20 * 1024 * 1024
    max_files: int = 64
    max_pixels: int = 40_000_000
    max_mc_samples: int = 100


class RequestError(Exception):
    """A client mistake: answered with ``status`` and ``message``, never a traceback."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class _Job:
    x: torch.Tensor
    mc_samples: int
    future: asyncio.Future[tuple[np.ndarray, np.ndarray | None]]


@dataclass
class Batcher:
    """Collects images from concurrent requests for a few milliseconds; one forward per batch."""

    model: GraftModel
    max_batch: int = 32
    max_wait_ms: float = 5.0
    requests: int = 0
    batches: int = 0
    queue: asyncio.Queue[_Job] = field(default_factory=asyncio.Queue)

    async def predict(self, x: torch.Tensor, mc_samples: int) -> tuple[np.ndarray, Any]:
        """Decoded outputs (and spread) of one preprocessed image ``(C, H, W)``."""
        future = asyncio.get_running_loop().create_future()
        self.requests += 1
        await self.queue.put(_Job(x, mc_samples, future))
        return await future

    async def run(self) -> None:
        """The worker: forever take a batch, run it in a thread, answer each waiting request."""
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            deadline = loop.time() + self.max_wait_ms / 1000
            while len(jobs) < self.max_batch and (left := deadline - loop.time()) > 0:
                try:
                    jobs.append(await asyncio.wait_for(self.queue.get(), left))
                except asyncio.TimeoutError:
                    break
            for mc in sorted({j.mc_samples for j in jobs}):
                group = [j for j in jobs if j.mc_samples == mc]
                self.batches += 1
                try:
                    x = torch.stack([j.x for j in group])
                    mean, std = await asyncio.to_thread(forward, self.model, x, mc)
                except Exception as e:  # answered to each request of the batch
                    for j in group:
                        j.future.set_exception(e)
                    continue
                for i, j in enumerate(group):
                    j.future.set_result((mean[i], None if std is None else std[i]))


@torch.inference_mode()
def forward(model: GraftModel, x: torch.Tensor, mc_samples: int) -> tuple[np.ndarray, Any]:
    """Decoded outputs of a batch; with ``mc_samples`` the mean and spread over dropout passes."""
    device = next(model.parameters()).device
    x = x.to(device)
    if mc_samples <= 0:
        return model.task.decode(model(x).float().cpu().numpy()), None
    model._enable_mc_dropout()  # raises ConfigError without dropout in the head
    try:
        feats = model.backbone(x)
        draws = np.stack(
            [model.task.decode(model.head(feats).float().cpu().numpy()) for _ in range(mc_samples)]
        )
    finally:
        model.eval()
    return draws.mean(axis=0), draws.std(axis=0)


def decode_upload(data: bytes, name: str, model: GraftModel, limits: ServeLimits) -> torch.Tensor:
    """An uploaded file's bytes as the model's input tensor; a RequestError names the file."""
    from PIL import Image, ImageOps

    if len(data) > limits.max_file_bytes:
        raise RequestError(
            413, f"{name}: {len(data)} bytes, over the {limits.max_file_bytes} limit"
        )
    if not data:
        raise RequestError(415, f"{name}: empty file, not an image")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > limits.max_pixels:
                raise RequestError(
                    413, f"{name}: {im.width}x{im.height} pixels, over {limits.max_pixels}"
                )
            im.load()
            image = to_mode(ImageOps.exif_transpose(im) or im, model.data_config.channels)
    except RequestError:
        raise
    except Exception as e:
        raise RequestError(415, f"{name}: not a readable image ({type(e).__name__})") from None
    transform = build_transform(model.data_config, train=False)
    return transform(image)


def read_path(path: str, root: Path, limits: ServeLimits) -> tuple[bytes, str]:
    """A file named in a JSON request, only from under ``root``."""
    if not isinstance(path, str) or not path:
        raise RequestError(422, f"paths must be non-empty strings, got {path!r}")
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise RequestError(403, f"{path}: outside the served folder {root}")
    if not target.is_file():
        raise RequestError(404, f"{path}: no such file under {root}")
    if target.stat().st_size > limits.max_file_bytes:
        raise RequestError(413, f"{path}: over the {limits.max_file_bytes}-byte limit")
    return target.read_bytes(), path


def create_app(
    model: GraftModel,
    *,
    root: str | Path | None = None,
    limits: ServeLimits | None = None,
    max_batch: int = 32,
    max_wait_ms: float = 5.0,
) -> FastAPI:
    """The FastAPI application serving ``model``; see the module docstring for the endpoints.

    Args:
        model: the model to serve (put in eval mode).
        root: JSON requests may name files only under this folder (default: the current one).
        limits: request limits.
        max_batch: most images per forward pass.
        max_wait_ms: how long the first image of a batch waits for others.
    """
    if model.backbone.input_kind != "image":
        raise ConfigError(
            f"serve: only image models are served today, not {model.backbone.input_kind}"
        )
    model.eval()
    batcher = Batcher(model, max_batch=max_batch, max_wait_ms=max_wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        batcher.queue = asyncio.Queue()
        worker = asyncio.create_task(batcher.run())
        yield
        worker.cancel()

    base = Path(root or Path.cwd()).resolve()
    return _build_app(model, batcher, base, limits or ServeLimits(), lifespan)


def _build_app(
    model: GraftModel, batcher: Batcher, root: Path, limits: ServeLimits, lifespan: Any
) -> Any:
    app = FastAPI(title="graft model", lifespan=lifespan)
    app.state.batcher = batcher

    @app.exception_handler(RequestError)
    async def _client_error(request: Request, e: RequestError) -> JSONResponse:
        return JSONResponse({"error": e.message}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        return JSONResponse({"error": f"invalid request ({where})"}, status_code=422)

    @app.exception_handler(GraftError)
    async def _graft_error(request: Request, e: GraftError) -> JSONResponse:
        return JSONResponse({"error": str(e)}, status_code=400)

    @app.exception_handler(Exception)
    async def _internal(request: Request, e: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error ({type(e).__name__})"}, status_code=500)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "task": model.task_spec.kind,
            "outputs": list(model.task_spec.class_names or model.task_spec.target_names or []),
            "input_size": list(model.data_config.input_size),
            "requests": batcher.requests,
            "batches": batcher.batches,
        }

    @app.post("/predict")
    async def predict(request: Request, mc_samples: int = 0) -> dict[str, Any]:
        if not 0 <= mc_samples <= limits.max_mc_samples:
            raise RequestError(422, f"mc_samples must be in 0..{limits.max_mc_samples}")
        files = await _request_files(request, root, limits)
        tensors = [
            await asyncio.to_thread(decode_upload, data, name, model, limits)
            for data, name in files
        ]
        results = await asyncio.gather(*(batcher.predict(x, mc_samples) for x in tensors))
        mean = np.stack([m for m, _ in results])
        std = np.stack([s for _, s in results]) if mc_samples else None
        rows = model.task.rows(mean, std)
        return {"predictions": [{"file": n, **r} for (_, n), r in zip(files, rows, strict=True)]}

    return app


async def _request_files(
    request: Request, root: Path, limits: ServeLimits
) -> list[tuple[bytes, str]]:
    """(bytes, name) of each image a request carries: uploads, or paths in a JSON body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = int(request.headers.get("content-length") or 0)
    if length > limits.max_file_bytes * limits.max_files:
        raise RequestError(413, f"request of {length} bytes is over the limit")
    if kind == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise RequestError(422, 'malformed JSON; send {"paths": ["a.png", ...]}') from None
        paths = body.get("paths") if isinstance(body, dict) else body
        if not isinstance(paths, list) or not paths:
            raise RequestError(422, 'JSON body must be {"paths": [...]} or a non-empty list')
        if len(paths) > limits.max_files:
            raise RequestError(413, f"{len(paths)} paths, over the {limits.max_files} limit")
        return [read_path(p, root, limits) for p in paths]
    if kind != "multipart/form-data":
        raise RequestError(
            415, f"content type {kind or 'none'}: upload images as multipart/form-data or send JSON"
        )
    form = await request.form(max_files=limits.max_files + 1)
    uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    if not uploads:
        raise RequestError(422, "no file in the upload; attach images as multipart files")
    if len(uploads) > limits.max_files:
        raise RequestError(413, f"more than {limits.max_files} files in one request")
    return [(await u.read(), u.filename or f"upload-{i}") for i, u in enumerate(uploads)]


def serve(
    model: str | Path | GraftModel,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    root: str | Path | None = None,
    max_batch: int = 32,
) -> None:
    """Serve a saved model until interrupted (needs the ``serve`` extra: fastapi, uvicorn)."""
    loaded = model if isinstance(model, GraftModel) else load(model)
    app = create_app(loaded, root=root, max_batch=max_batch)
    uvicorn.run(app, host=host, port=port, log_level="info")
