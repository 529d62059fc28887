#!/usr/bin/env python3
"""A screenshot of a Chinese notebook in the Chinese JupyterLab, taken headless.

Starts the lab (scripts/lab.sh, headless, LAB_LANG=zh_CN) on a free port, opens the notebook in
Debian's Chromium (headless, driven over the DevTools protocol), waits until the lab's menus are in
Chinese and the notebook's figures are drawn, scrolls the chosen figure into view and writes a PNG.

Usage: screenshot_lab.py [--notebook zh/appendix-a-deep-learning-basics.ipynb] [--figure -2]
                         [--size 1400x1000] [--out target/screenshots/lab-zh.png]
  --notebook  relative to notebooks/ (default: appendix A in Chinese, whose loss plot has Chinese
              labels; chapter 5's, zh/ch05-pretraining.ipynb --figure 2, once it is executed)
  --figure    which figure (image output) to scroll to: its index among the notebook's figures,
              negative from the end (default -2: appendix A's loss plot)

The committed outputs are trusted (`jupyter trust`) in a signature database of the run's own (a
temporary folder), so JupyterLab draws their SVG figures, and the lab's workspace is kept there
too: the user's Jupyter data are left alone.
Needs `chromium` (`scripts/setup.sh browser`). Prints the PNG's path.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, what: str, seconds: float = 120) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"screenshot: {what} exited early")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read()
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"screenshot: no answer from {what} at {url}")


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket (tornado's client)."""

    def __init__(self, ws):
        self.ws, self.next_id = ws, 0

    @classmethod
    async def connect(cls, url: str) -> "DevTools":
        from tornado.websocket import websocket_connect

        return cls(await websocket_connect(url, max_message_size=256 * 1024 * 1024))

    async def call(self, method: str, **params):
        self.next_id += 1
        my_id = self.next_id
        await self.ws.write_message(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = await self.ws.read_message()
            if msg is None:
                raise SystemExit("screenshot: the browser closed the connection")
            reply = json.loads(msg)
            if reply.get("id") == my_id:
                if "error" in reply:
                    raise SystemExit(f"screenshot: {method}: {reply['error']}")
                return reply.get("result", {})

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")


# What the page shows once the lab is ready: the main menu's titles, and the notebook's figures
# drawn (JupyterLab shows an SVG output as an <img>).
STATE_JS = """(() => {
  const menus = [...document.querySelectorAll('#jp-menu-panel .lm-MenuBar-itemLabel')].map(e => e.textContent);
  const figures = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img');
  const loaded = [...figures].filter(img => img.complete && img.naturalWidth > 0).length;
  return {menus, figures: figures.length, loaded};
})()"""

SCROLL_JS = """((k) => {
  const figures = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img')];
  const fig = figures[k < 0 ? figures.length + k : k];
  if (!fig) return null;
  fig.scrollIntoView({block: 'center'});
  return fig.closest('.jp-Cell') ? fig.closest('.jp-Cell').querySelector('.jp-InputArea .cm-content')?.textContent.slice(0, 80) : '';
})(%d)"""


def figure_count(notebook: Path) -> int:
    """The image outputs the notebook has (JupyterLab draws each as one <img>)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return sum(1 for c in cells for o in c.get("outputs", []) if any(m.startswith("image/") for m in o.get("data", {})))


async def shoot(url: str, debug_port: int, browser: subprocess.Popen, expected: int, figure: int,
                size: tuple[int, int], out: Path) -> None:
    listing = json.loads(wait_for(f"http://127.0.0.1:{debug_port}/json/list", browser, "chromium"))
    page = next(t for t in listing if t.get("type") == "page")
    tools = await DevTools.connect(page["webSocketDebuggerUrl"])
    await tools.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1, mobile=False)
    await tools.call("Page.enable")
    await tools.call("Page.navigate", url=url)
    deadline, state = time.monotonic() + 180, {}
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        state = await tools.evaluate(STATE_JS) or {}
        if state.get("menus") and state.get("loaded", 0) >= expected:
            break
    else:
        raise SystemExit(f"screenshot: the lab did not show the notebook's figures in time (last state: {state})")
    print(f"screenshot: menus {state['menus']}, {state['figures']} figure(s) drawn")
    # Cells off screen are laid out only when scrolled near (JupyterLab's content-visibility
    # windowing), which moves the figure: scroll to it until it stays put.
    for _ in range(5):
        cell = await tools.evaluate(SCROLL_JS % figure)
        if cell is None:
            raise SystemExit(f"screenshot: no figure {figure} (the notebook shows {state['figures']})")
        await asyncio.sleep(1.5)
    print(f"screenshot: figure {figure}, of the cell {cell!r}")
    await tools.evaluate("document.querySelectorAll('.Toastify').forEach(e => e.remove())")  # the news question
    await asyncio.sleep(0.5)
    shot = await tools.call("Page.captureScreenshot", format="png")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--notebook", default="zh/appendix-a-deep-learning-basics.ipynb", help="relative to notebooks/")
    ap.add_argument("--figure", type=int, default=-2, help="index of the figure to show (negative: from the end)")
    ap.add_argument("--size", default="1400x1000", help="window size, WIDTHxHEIGHT")
    ap.add_argument("--out", type=Path, default=REPO / "target" / "screenshots" / "lab-zh.png")
    ap.add_argument("--browser", default="chromium")
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    notebook = REPO / "notebooks" / args.notebook
    if not notebook.is_file():
        raise SystemExit(f"screenshot: no notebook {notebook}")

    tmp = Path(tempfile.mkdtemp(prefix="llm-fs-screenshot-"))
    notary = [f"--NotebookNotary.db_file={tmp / 'nbsignatures.db'}", f"--NotebookNotary.secret_file={tmp / 'notebook_secret'}"]
    subprocess.run(["jupyter", "trust", *notary, str(notebook)], check=True, capture_output=True)
    port, token, debug_port = free_port(), secrets.token_hex(16), free_port()
    # The lab's workspace (open tabs) goes to the run's folder too, so the next `make lab` does not
    # reopen this notebook.
    env = dict(os.environ, HEADLESS="1", LAB_PORT=str(port), LAB_LANG="zh_CN", JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"))
    log = open(tmp / "lab.log", "w+")
    lab = subprocess.Popen(
        [str(REPO / "scripts" / "lab.sh"), "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", *notary],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    browser = None
    try:
        wait_for(f"http://127.0.0.1:{port}/api/status?token={token}", lab, "the lab")
        browser = subprocess.Popen(
            [args.browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp / 'profile'}",
             f"--remote-debugging-port={debug_port}", f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}/lab/tree/{args.notebook}?token={token}"
        asyncio.run(shoot(url, debug_port, browser, figure_count(notebook), args.figure, size, args.out))
    finally:
        for proc in (browser, lab):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
