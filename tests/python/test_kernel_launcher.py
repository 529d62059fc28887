"""The kernel launcher's build folders (scripts/kernel-launcher.sh): a pool of slots, one per live
kernel, where a cold slot starts as a copy of a warm one.

A fake evcxr_jupyter (LLM_FS_KERNEL_EVCXR) reports the EVCXR_TMPDIR it was given and, when asked,
stays alive holding the slot's lock as the real kernel does. The pool is private (LLM_FS_KERNEL_POOL).
Nothing is timed and nothing is compiled: these run in a few seconds.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "scripts" / "kernel-launcher.sh"
TARGET = "x86_64-unknown-linux-gnu"
# An old mtime on the fake build outputs, to show the copy keeps it (cargo's fingerprints compare
# mtimes, so a copy with new mtimes would rebuild).
OLD_MTIME = 1_700_000_000

FAKE_EVCXR = """#!/usr/bin/env bash
# Fake evcxr_jupyter: report the folder and the arguments, then stay alive if asked.
printf '%s\\n%s\\n' "$EVCXR_TMPDIR" "$*" >"$FAKE_REPORT.tmp" && mv "$FAKE_REPORT.tmp" "$FAKE_REPORT"
if [ -n "${FAKE_LIVE:-}" ]; then exec sleep 300; fi
"""


@pytest.fixture
def kernel_env(tmp_path):
    fake = tmp_path / "fake_evcxr_jupyter"
    fake.write_text(FAKE_EVCXR)
    fake.chmod(0o755)
    (tmp_path / "tmp").mkdir()
    return dict(os.environ, LLM_FS_KERNEL_POOL=str(tmp_path / "pool"), LLM_FS_KERNEL_EVCXR=str(fake),
                TMPDIR=str(tmp_path / "tmp"))


def make_warm_slot(pool: Path, i: int) -> Path:
    """A slot as evcxr leaves it after a build: a cargo project with target/ and cargo's lock files."""
    slot = pool / f"slot-{i}"
    deps = slot / "target" / TARGET / "debug" / "deps"
    deps.mkdir(parents=True)
    (slot / "src").mkdir()
    (slot / "src" / "lib.rs").write_text("// cell\n")
    (slot / "Cargo.lock").write_text("# lock\n")
    (slot / "target" / "debug").mkdir()
    (slot / "target" / "debug" / ".cargo-lock").touch()
    (slot / "target" / TARGET / "debug" / ".cargo-lock").touch()
    lib = deps / "libtch-0123abcd.so"
    lib.write_bytes(b"compiled tch " * 100)
    os.utime(lib, (OLD_MTIME, OLD_MTIME))
    return slot


def hold(path: Path, how: int = fcntl.LOCK_EX) -> int:
    """Take a flock on path (as a live kernel holds its slot, or cargo its build folder)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, how | fcntl.LOCK_NB)
    return fd


def launch(env: dict, report: Path, **extra: str) -> subprocess.CompletedProcess:
    """Start a kernel that exits at once; returns the launcher's result (stderr has its messages)."""
    r = subprocess.run(["/bin/bash", str(LAUNCHER), "conn.json"], env=dict(env, FAKE_REPORT=str(report), **extra),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


def folder_of(report: Path) -> Path:
    folder, args = report.read_text().splitlines()
    assert args == "--control_file conn.json", args
    return Path(folder)


class LiveKernel:
    """A fake kernel that stays alive, holding the folder the launcher gave it."""

    def __init__(self, env: dict, report: Path):
        self.proc = subprocess.Popen(["/bin/bash", str(LAUNCHER), "conn.json"], start_new_session=True,
                                     env=dict(env, FAKE_REPORT=str(report), FAKE_LIVE="1"),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not report.exists():
            assert self.proc.poll() is None, "the launcher exited before starting the kernel"
            assert time.monotonic() < deadline, "the kernel did not start within 30 s"
            time.sleep(0.05)
        self.folder = folder_of(report)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


def test_a_cold_slot_starts_as_a_copy_of_the_warm_one(tmp_path, kernel_env):
    pool = tmp_path / "pool"
    warm = make_warm_slot(pool, 0)
    held = hold(pool / "slot-0.lock")  # the first notebook's kernel is alive
    try:
        r = launch(kernel_env, tmp_path / "k2")
    finally:
        os.close(held)
    new = folder_of(tmp_path / "k2")
    assert new == pool / "slot-1", f"the second kernel got {new}"
    lib = Path("target") / TARGET / "debug" / "deps" / "libtch-0123abcd.so"
    assert (new / lib).read_bytes() == (warm / lib).read_bytes(), "the warm build was not copied"
    assert (new / lib).stat().st_mtime == OLD_MTIME, "the copy must keep mtimes (cargo's fingerprints)"
    assert (new / "Cargo.lock").read_text() == "# lock\n"
    assert (new / ".llm-fs-seeded-from").read_text().strip() == str(warm)
    assert f"as a copy of {warm}" in r.stderr, r.stderr
    assert not list(pool.glob(".*seeding")), "the side folder of the copy is left behind"
    assert (warm / lib).exists() and not (warm / ".llm-fs-seeded-from").exists(), "the source slot was changed"


def test_a_live_slot_is_never_handed_to_a_second_kernel(tmp_path, kernel_env):
    pool = tmp_path / "pool"
    make_warm_slot(pool, 0)
    first = LiveKernel(kernel_env, tmp_path / "k1")
    try:
        assert first.folder == pool / "slot-0", "a warm free slot is used as it is"
        assert not (first.folder / ".llm-fs-seeded-from").exists(), "a warm slot is not copied over"
        second = LiveKernel(kernel_env, tmp_path / "k2")
        try:
            assert second.folder == pool / "slot-1", f"the second kernel got {second.folder}"
            assert (second.folder / ".llm-fs-seeded-from").read_text().strip() == str(first.folder)
            third = launch(kernel_env, tmp_path / "k3")
            assert folder_of(tmp_path / "k3") == pool / "slot-2", third.stderr
        finally:
            second.stop()
    finally:
        first.stop()
    # Once its kernel is gone, the slot is free again: the next kernel reuses it, warm.
    launch(kernel_env, tmp_path / "k4")
    assert folder_of(tmp_path / "k4") == pool / "slot-0"


def test_the_fifth_kernel_gets_a_temporary_folder(tmp_path, kernel_env):
    pool = tmp_path / "pool"
    warm = make_warm_slot(pool, 0)
    held = [hold(pool / f"slot-{i}.lock") for i in range(4)]
    try:
        r = launch(kernel_env, tmp_path / "k5")
    finally:
        for fd in held:
            os.close(fd)
    folder = folder_of(tmp_path / "k5")
    assert folder.parent == tmp_path / "tmp" and folder.name.startswith("llm-fs-evcxr-"), folder
    assert "all 4 kept build folders are in use" in r.stderr, r.stderr
    # It is cold too, so it starts as a copy of the warm slot.
    assert (folder / ".llm-fs-seeded-from").read_text().strip() == str(warm)
    assert sorted(p.name for p in pool.iterdir() if p.is_dir()) == ["slot-0"], "no slot folder was made"


def test_a_build_in_progress_is_not_copied(tmp_path, kernel_env):
    pool = tmp_path / "pool"
    warm = make_warm_slot(pool, 0)
    held = hold(pool / "slot-0.lock")
    # cargo holds its build-folder lock while it writes outputs; a copy then could be half-written.
    cargo = hold(warm / "target" / "debug" / ".cargo-lock")
    try:
        t0 = time.monotonic()
        r = launch(kernel_env, tmp_path / "k2", LLM_FS_KERNEL_SEED_WAIT="1")
        waited = time.monotonic() - t0
        cold = folder_of(tmp_path / "k2")
        assert cold == pool / "slot-1" and not (cold / "target").exists(), "a folder was copied mid-build"
        assert "waiting up to 1 s" in r.stderr and "no warm build folder to copy" in r.stderr, r.stderr
        assert waited >= 1.0, f"the launcher gave up after {waited:.2f} s instead of waiting 1 s"
        # When the build ends during the wait, the copy is made once cargo lets go of the folder.
        threading.Timer(1.0, os.close, [cargo]).start()
        cargo = None
        r = launch(kernel_env, tmp_path / "k3", LLM_FS_KERNEL_SEED_WAIT="30")
        assert (pool / "slot-1" / ".llm-fs-seeded-from").read_text().strip() == str(warm), r.stderr
    finally:
        if cargo is not None:
            os.close(cargo)
        os.close(held)
