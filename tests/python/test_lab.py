"""The lab command's server (scripts/lab.sh, what `make lab` runs after set-up): started headless,
it prints its URL and its API lists the project's kernel."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_headless_lab_lists_the_project_kernel(tmp_path):
    port, token = free_port(), "llm-fs-test-token"
    env = dict(os.environ, HEADLESS="1", LAB_PORT=str(port), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log = open(tmp_path / "lab.log", "w+")
    proc = subprocess.Popen(
        [str(REPO / "scripts" / "lab.sh"), "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        specs = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and specs is None:
            time.sleep(1)
            assert proc.poll() is None, "lab exited early:\n" + (tmp_path / "lab.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs?token={token}", timeout=5) as r:
                    specs = json.load(r)
            except OSError:
                continue
        assert specs is not None, "no answer from the lab server:\n" + (tmp_path / "lab.log").read_text()
        assert "llm-from-scratch" in specs["kernelspecs"], f"kernels: {list(specs['kernelspecs'])}"
        spec = specs["kernelspecs"]["llm-from-scratch"]["spec"]
        assert spec["display_name"] == "Rust (LLM from scratch)"
        assert specs["default"] == "llm-from-scratch"
        # The server serves notebooks/: the chapter 1 notebook is listed by the contents API.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=5) as r:
            names = [c["name"] for c in json.load(r)["content"]]
        assert "ch01-understanding-llms.ipynb" in names, names
        log.flush()
        text = (tmp_path / "lab.log").read_text()
        # Jupyter prints the URL (it masks a token given on the command line as "...").
        assert f"http://127.0.0.1:{port}/lab?token=" in text, f"the URL is printed ({len(text)} chars of log):\n{text}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
