"""The prediction server over real HTTP on localhost: good requests, concurrent ones, bad ones."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import graft
from graft.testing import tiny_backbone

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def model_dir(digits_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serve") / "model"
    graft.fit(
        digits_dir,
        backbone=tiny_backbone(image_size=32),
        strategy="feature_extraction",
        epochs=2,
        dropout=0.2,
        progress=False,
        out=out,
        log=lambda s: None,
    )
    return out


@pytest.fixture(scope="module")
def url(model_dir: Path, digits_dir: Path) -> Iterator[str]:
    from graft.workflows.serve import ServeLimits, create_app

    app = create_app(
        graft.load(model_dir),
        root=digits_dir,
        limits=ServeLimits(max_file_bytes=50_000, max_files=8),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _send(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _digit_files(digits_dir: Path) -> list[Path]:
    return [sorted((digits_dir / str(d)).iterdir())[1] for d in range(10)]


def test_health(url: str) -> None:
    with urllib.request.urlopen(f"{url}/health", timeout=30) as r:
        health = json.loads(r.read())
    assert health["status"] == "ok" and health["outputs"] == [str(d) for d in range(10)]


def test_uploads_and_paths_answer_as_predict_does(
    url: str, model_dir: Path, digits_dir: Path
) -> None:
    files = _digit_files(digits_dir)[:4]
    expected = graft.load(model_dir).predict(files)
    body, kind = _multipart([(f.name, f.read_bytes()) for f in files])
    status, out = _send(f"{url}/predict", body, kind)
    assert status == 200, out
    got = out["predictions"]
    assert [g["prediction"] for g in got] == [e["prediction"] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert g["probability"] == pytest.approx(e["probability"], abs=1e-5)
    rel = [str(f.relative_to(digits_dir)) for f in files]
    status, out = _send(f"{url}/predict", json.dumps({"paths": rel}).encode(), "application/json")
    assert status == 200 and [p["file"] for p in out["predictions"]] == rel
    assert [p["prediction"] for p in out["predictions"]] == [e["prediction"] for e in expected]


def test_mc_dropout_spread_on_request(url: str, digits_dir: Path) -> None:
    rel = [str(_digit_files(digits_dir)[0].relative_to(digits_dir))]
    status, out = _send(f"{url}/predict?mc_samples=8", json.dumps(rel).encode(), "application/json")
    assert status == 200 and out["predictions"][0]["probability_std"] >= 0.0


def test_concurrent_requests_are_all_answered_right(
    url: str, model_dir: Path, digits_dir: Path
) -> None:
    files = _digit_files(digits_dir)
    expected = {r["path"]: r["prediction"] for r in graft.load(model_dir).predict(files)}

    def one(f: Path) -> str:
        body, kind = _multipart([(f.name, f.read_bytes())])
        status, out = _send(f"{url}/predict", body, kind)
        assert status == 200
        return str(out["predictions"][0]["prediction"])

    with ThreadPoolExecutor(max_workers=10) as pool:
        got = list(pool.map(one, files))
    assert got == [expected[str(f)] for f in files]
    with urllib.request.urlopen(f"{url}/health", timeout=30) as r:
        health = json.loads(r.read())
    assert health["batches"] <= health["requests"]


@pytest.mark.parametrize(
    ("body", "kind", "status", "words"),
    [
        (b"plain text", "text/plain", 415, "content type"),
        (b"{not json", "application/json", 422, "malformed JSON"),
        (json.dumps({"paths": ["../../etc/passwd"]}).encode(), "application/json", 403, "outside"),
        (json.dumps({"paths": ["nope.png"]}).encode(), "application/json", 404, "no such file"),
        (json.dumps({"paths": []}).encode(), "application/json", 422, "non-empty"),
    ],
)
def test_bad_json_and_content_types_get_a_4xx_with_a_message(
    url: str, body: bytes, kind: str, status: int, words: str
) -> None:
    code, out = _send(f"{url}/predict", body, kind)
    assert code == status and words in out["error"] and "Traceback" not in out["error"]


def test_bad_uploads_get_a_4xx_with_a_message(url: str, digits_dir: Path) -> None:
    body, kind = _multipart([("broken.png", b"\x89PNG\r\n\x1a\nnot really a png")])
    code, out = _send(f"{url}/predict", body, kind)
    assert code == 415 and "broken.png" in out["error"]
    body, kind = _multipart([("big.png", b"\0" * 60_000)])
    code, out = _send(f"{url}/predict", body, kind)
    assert code == 413 and "big.png" in out["error"]
    f = _digit_files(digits_dir)[0]
    body, kind = _multipart([(f.name, f.read_bytes())] * 9)
    code, out = _send(f"{url}/predict", body, kind)
    assert code == 413
    code, out = _send(f"{url}/predict?mc_samples=abc", b"[]", "application/json")
    assert code == 422 and "mc_samples" in out["error"]
