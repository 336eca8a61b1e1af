"""Saving never loses a model: real kills, real read-only and full disks, user folders kept.

Each fault is real: a save process is SIGKILLed between its two renames (the test hook
``GRAFT_TEST_PAUSE_BETWEEN_RENAMES`` holds it there), a read-only folder is tested from an
unprivileged process (root bypasses permissions), and a full disk is a 4 MiB tmpfs. Where the
machine cannot do that (no ``setpriv``, no permission to mount) the test is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import graft
from graft.backbones import create
from graft.errors import ArtifactError, ConfigError
from graft.io import EXCHANGE_ENV, PAUSE_ENV, atomic_dir, exchange, recover_dir
from graft.model import GraftModel, check_out
from graft.tasks import Classification

SRC = str(Path(graft.__file__).resolve().parents[1])
SAVE_SCRIPT = """
import sys, torch
from graft.backbones import create
from graft.model import GraftModel
from graft.tasks import Classification
torch.manual_seed(int(sys.argv[2]))
bb = create("scratch:small_cnn_gray", pretrained=False, image_size=16)
GraftModel(bb, Classification.spec_for(["a", "b"])).save(sys.argv[1])
"""


def tiny_model(seed: int) -> GraftModel:
    torch.manual_seed(seed)
    backbone = create("scratch:small_cnn_gray", pretrained=False, image_size=16)
    return GraftModel(backbone, Classification.spec_for(["a", "b"]))


def weights_of(model: GraftModel) -> torch.Tensor:
    return next(iter(model.head.parameters())).detach().clone()


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, **extra}


def wait_for(check: object, seconds: float = 120.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_sigkill_between_renames_loses_nothing(tmp_path: Path) -> None:
    """The fallback (two renames, where the atomic swap is missing), killed after moving the
    old model aside: the next start puts it back."""
    out = tmp_path / "model"
    old = tiny_model(1)
    old.save(out)
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVE_SCRIPT, str(out), "2"],
        env=env(**{PAUSE_ENV: "120", EXCHANGE_ENV: "0"}),
    )
    try:
        in_window = wait_for(lambda: not out.exists() and list(tmp_path.glob(".model.old-*")))
        assert in_window, "the save never reached the window between its renames"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    aside = list(tmp_path.glob(".model.old-*"))
    assert not out.exists() and len(aside) == 1  # the real fault: nothing at --out right now
    with pytest.raises(ArtifactError, match=r"interrupted save left the previous model in .*old-"):
        graft.load(out)
    assert list(tmp_path.glob(".model.tmp-*")), "the killed save's complete folder is left over"
    check_out(out)  # what fit does first: recovers
    assert out.is_dir() and not list(tmp_path.glob(".model.*"))
    assert torch.equal(weights_of(graft.load(out)), weights_of(old))


@pytest.fixture(params=["disk", "tmpfs"])
def save_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A folder on the test disk, or on a freshly mounted tmpfs (skipped where none mounts)."""
    if request.param == "disk":
        yield tmp_path
        return
    mnt = Path(tempfile.mkdtemp(prefix="graft-tmpfs-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a tmpfs ({done.stderr.strip()[:120]})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        mnt.rmdir()


def test_sigkill_between_swap_and_cleanup_keeps_the_new_model(save_dir: Path) -> None:
    """The atomic swap: --out always holds a whole model; a kill before the old one is deleted
    leaves only a leftover, which the next start removes."""
    out = save_dir / "model"
    tiny_model(1).save(out)
    if not exchange(out, out):  # swapping a folder with itself: a harmless probe
        pytest.skip("this file system or kernel has no renameat2(RENAME_EXCHANGE)")
    before = (out / "model.safetensors").stat().st_ino
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVE_SCRIPT, str(out), "2"], env=env(**{PAUSE_ENV: "120"})
    )
    try:
        seen: list[bool] = []

        def swapped() -> bool:  # --out exists throughout: record that while waiting
            seen.append(out.is_dir())
            return (out / "model.safetensors").stat().st_ino != before

        assert wait_for(swapped), "the save never swapped its folder in"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert all(seen) and not list(save_dir.glob(".model.old-*"))
    leftover = list(save_dir.glob(".model.tmp-*"))
    assert len(leftover) == 1 and (leftover[0] / "model.safetensors").stat().st_ino == before
    assert torch.equal(weights_of(graft.load(out)), weights_of(tiny_model(2)))
    check_out(out)  # what fit does first: removes the dead save's leftover
    assert sorted(p.name for p in save_dir.iterdir()) == ["model"]


def test_the_fallback_replaces_where_the_swap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without RENAME_EXCHANGE answers EINVAL: two renames do the job."""
    import ctypes
    import errno

    import graft.io as gio

    def refuse(*args: object) -> int:
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(gio, "_renameat2", lambda: refuse)
    tiny_model(1).save(tmp_path / "model")
    assert not exchange(tmp_path / "model", tmp_path / "model")
    tiny_model(2).save(tmp_path / "model")
    assert torch.equal(weights_of(graft.load(tmp_path / "model")), weights_of(tiny_model(2)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_the_raw_syscall_swaps_where_glibc_has_no_wrapper(tmp_path: Path) -> None:
    import ctypes

    import graft.io as gio

    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux only")
    call = gio._syscall_renameat2(ctypes.CDLL(None, use_errno=True))
    if call is None:
        pytest.skip("no known renameat2 syscall number for this machine")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "f").write_text("a")
    assert call(-100, bytes(tmp_path / "a"), -100, bytes(tmp_path / "b"), 2) == 0
    assert (tmp_path / "b" / "f").read_text() == "a" and not list((tmp_path / "a").iterdir())


def test_killed_save_leftovers_are_cleaned_and_fresh_ones_kept(tmp_path: Path) -> None:
    """A temp folder of a dead process is removed; a live writer's is not touched."""
    out = tmp_path / "model"
    tiny_model(1).save(out)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    stale = tmp_path / f".model.tmp-{dead.stdout.strip()}-abc"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "big.bin").write_bytes(b"x" * 1000)
    live = tmp_path / f".model.tmp-{os.getppid()}-xyz"
    live.mkdir()
    done = recover_dir(out)
    assert not stale.exists() and live.exists() and any("killed save" in d for d in done)
    assert (out / "config.json").is_file()


def test_atomic_dir_replaces_and_syncs(tmp_path: Path) -> None:
    target = tmp_path / "folder"
    for text in ("one", "two"):
        with atomic_dir(target) as tmp:
            (tmp / "f.txt").write_text(text)
    assert (target / "f.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


@pytest.mark.parametrize("case", ["file", "hf_model_folder", "dot"])
def test_out_refused_before_any_work(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file, a non-graft folder (a Hugging Face model) and ``--out .`` are refused up front."""
    monkeypatch.chdir(tmp_path)
    if case == "file":
        out = tmp_path / "notes.txt"
        out.write_text("keep me")
    elif case == "hf_model_folder":
        out = tmp_path / "bert"
        out.mkdir()
        (out / "config.json").write_text('{"model_type": "bert"}')
        (out / "model.safetensors").write_bytes(b"weights")
        (out / "README.md").write_text("card")
    else:
        out = Path(".")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    # The data path does not exist: an error about --out proves it is checked first.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "graft.cli",
            "fit",
            str(tmp_path / "no-data"),
            "--out",
            str(out),
            "--backbone",
            "small_cnn_gray",
            "--no-pretrained",
            "--epochs",
            "1",
        ],
        env=env(),
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graft: error: --out"), result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_save_refuses_a_non_graft_folder(tmp_path: Path) -> None:
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text('{"architectures": ["BertModel"]}')
    with pytest.raises(ArtifactError, match="not a graft model"):
        tiny_model(0).save(hf)
    assert (hf / "config.json").read_text() == '{"architectures": ["BertModel"]}'


def test_fit_keeps_a_user_folder_named_out_ckpt(digits_dir: Path, tmp_path: Path) -> None:
    """``<out>.ckpt`` that is not graft's checkpoint is refused, never deleted."""
    out = tmp_path / "model"
    user = tmp_path / "model.ckpt"
    user.mkdir()
    (user / "mine.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a graft checkpoint"):
        graft.fit(
            digits_dir,
            out=str(out),
            backbone="small_cnn_gray",
            pretrained=False,
            image_size=16,
            epochs=1,
            log=lambda m: None,
        )
    assert (user / "mine.txt").read_text() == "mine"


def test_fit_removes_the_checkpoint_it_created(digits_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    graft.fit(
        digits_dir,
        out=str(out),
        backbone="small_cnn_gray",
        pretrained=False,
        image_size=16,
        epochs=1,
        log=lambda m: None,
    )
    assert (out / "config.json").is_file() and not (tmp_path / "model.ckpt").exists()


# ----------------------------------------------------------------- read-only and full disks
def _world_dir() -> Path:
    """A folder an unprivileged user can reach (pytest's tmp folders are private to root)."""
    base = Path(tempfile.mkdtemp(prefix="graft-ro-"))
    base.chmod(0o755)
    return base


@pytest.fixture
def nobody() -> list[str]:
    if os.geteuid() != 0:
        return []  # already unprivileged: permissions apply as they are
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to test a read-only folder as an unprivileged user")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_read_only_destination_refused_up_front(nobody: list[str]) -> None:
    base = _world_dir()
    try:
        ro = base / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        code = "from graft.model import check_out; check_out(__import__('sys').argv[1])"
        probe = subprocess.run(
            [*nobody, sys.executable, "-c", "import graft"],
            env=env(),
            capture_output=True,
            text=True,
        )
        if probe.returncode != 0:
            pytest.skip(f"the unprivileged user cannot run this Python: {probe.stderr[-200:]}")
        result = subprocess.run(
            [*nobody, sys.executable, "-c", code, str(ro / "model")],
            env=env(),
            capture_output=True,
            text=True,
        )
        assert result.returncode != 0
        assert "ConfigError: --out" in result.stderr and "Permission denied" in result.stderr
        result = subprocess.run(
            [
                *nobody,
                sys.executable,
                "-m",
                "graft.cli",
                "fit",
                str(base / "no-data"),
                "--out",
                str(ro / "model"),
            ],
            env=env(),
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2
        assert result.stderr.startswith("graft: error: --out") and "Traceback" not in result.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def full_disk() -> Iterator[Path]:
    """A 4 MiB tmpfs filled to the last byte."""
    mnt = Path(tempfile.mkdtemp(prefix="graft-full-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if done.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a small tmpfs to fill ({done.stderr.strip()[:120]})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        mnt.rmdir()


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_full_destination_refused_up_front_and_old_model_kept(full_disk: Path) -> None:
    out = full_disk / "model"
    model = tiny_model(0)
    model.save(out)  # a small CNN: about 0.4 MB, fits
    _fill(full_disk)
    with pytest.raises(ConfigError, match="No space left"):
        check_out(out)
    with pytest.raises(ArtifactError, match=r"No space left.*previous model there is untouched"):
        tiny_model(1).save(out)
    assert torch.equal(weights_of(graft.load(out)), weights_of(model))
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "model"]
