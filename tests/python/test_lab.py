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

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """scripts/lab.sh started headless on a free port with a known token; `get` reads its API."""

    def __init__(self, tmp_path: Path, **env: str):
        self.port, self.token = free_port(), "llm-fs-test-token"
        self.log_path = tmp_path / "lab.log"
        full_env = dict(os.environ, HEADLESS="1", LAB_PORT=str(self.port), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), **env)
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(
            [str(REPO / "scripts" / "lab.sh"), "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={self.token}"],
            env=full_env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}?token={self.token}", timeout=10) as r:
            return json.load(r)

    def wait(self, path: str, seconds: float = 90):
        """The first answer of the server at `path`, waiting for it to start."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(1)
            assert self.proc.poll() is None, "lab exited early:\n" + self.log_path.read_text()
            try:
                return self.get(path)
            except OSError:
                continue
        raise AssertionError("no answer from the lab server:\n" + self.log_path.read_text())

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


def test_headless_lab_lists_the_project_kernel(tmp_path):
    lab = Lab(tmp_path, LAB_LANG="", LANG="C.UTF-8", LC_ALL="", LC_MESSAGES="")
    try:
        specs = lab.wait("/api/kernelspecs")
        assert "llm-from-scratch" in specs["kernelspecs"], f"kernels: {list(specs['kernelspecs'])}"
        spec = specs["kernelspecs"]["llm-from-scratch"]["spec"]
        assert spec["display_name"] == "Rust (LLM from scratch)"
        assert specs["default"] == "llm-from-scratch"
        # The server serves notebooks/: the chapter 1 notebook is listed by the contents API.
        names = [c["name"] for c in lab.get("/api/contents")["content"]]
        assert "ch01-understanding-llms.ipynb" in names, names
        text = lab.text()
        # Jupyter prints the URL (it masks a token given on the command line as "...").
        assert f"http://127.0.0.1:{lab.port}/lab?token=" in text, f"the URL is printed ({len(text)} chars of log):\n{text}"
        # Without LAB_LANG (and a Chinese system locale) the lab stays in English: the translation
        # setting is JupyterLab's default.
        locale = lab.get("/lab/api/settings/@jupyterlab/translation-extension:plugin")["settings"].get("locale", "default")
        assert locale in ("default", "en"), f"the lab's locale without LAB_LANG: {locale}"
    finally:
        lab.stop()


@pytest.mark.parametrize(
    "env",
    [dict(LAB_LANG="zh_CN", LANG="C.UTF-8", LC_ALL="", LC_MESSAGES=""), dict(LAB_LANG="", LANG="zh_CN.UTF-8", LC_ALL="", LC_MESSAGES="")],
    ids=["LAB_LANG", "system-locale"],
)
def test_lab_in_chinese(tmp_path, env):
    # LAB_LANG=zh_CN (what `LAB_LANG=zh_CN make lab` passes), or a Chinese system locale: the
    # translation setting says zh_CN, the Chinese language pack is installed and its strings are served.
    lab = Lab(tmp_path, **env)
    try:
        setting = lab.wait("/lab/api/settings/@jupyterlab/translation-extension:plugin")
        assert setting["settings"]["locale"] == "zh_CN", f"the lab's translation setting: {setting['settings']}"
        packs = lab.get("/lab/api/translations/")["data"]
        assert "zh_CN" in packs, f"installed language packs: {list(packs)}"
        assert packs["zh_CN"]["nativeName"].startswith("中文"), packs["zh_CN"]
        strings = lab.get("/lab/api/translations/zh_CN")
        assert strings["message"] == "", f"translations of zh_CN: {strings['message']}"
        jupyterlab = strings["data"]["jupyterlab"]
        # The main menu's "Edit" and the file browser are translated (gettext JSON: msgid -> [msgstr]).
        assert jupyterlab["Edit"] == ["编辑"], f"'Edit' in Chinese: {jupyterlab.get('Edit')}"
        assert "文件" in jupyterlab["File Browser"][0], f"'File Browser' in Chinese: {jupyterlab.get('File Browser')}"
    finally:
        lab.stop()
