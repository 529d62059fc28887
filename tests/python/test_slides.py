"""The notebooks as slides: scripts/slides.py's rules and --check, and a headless Chromium that
opens chapter 1 in JupyterLab's RISE presenter (jupyterlab-rise's /rise/<path>, served by
scripts/lab.sh as `make lab` serves it), dumps its page and takes a screenshot: the page holds
reveal.js's slides, as many as the notebook's slide metadata says, and the screenshot is not blank."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import slides  # noqa: E402
from test_lab import free_port  # noqa: E402

CHAPTER = "ch01-understanding-llms.ipynb"


def md(text: str) -> dict:
    return {"cell_type": "markdown", "id": f"m{abs(hash(text)) % 10**8}", "metadata": {}, "source": text}


def code(text: str, out_lines: int = 1) -> dict:
    output = {"output_type": "stream", "name": "stdout", "text": "x\n" * out_lines}
    return {"cell_type": "code", "id": f"c{abs(hash(text)) % 10**8}", "metadata": {}, "source": text, "execution_count": 1, "outputs": [output]}


def test_slide_types_follow_the_rules():
    cells = [
        md("# Chapter"),  # the first cell: a slide
        md("Intro prose."),  # markdown after markdown: continues
        md("## 2.1 A section"),  # a section: a new slide
        md("What we do."),
        code("let x = 1;"),  # code after its explanation: a fragment
        code("let y = 2;"),  # code after code: continues
        md("The next idea."),  # markdown after code: a subslide
        md("### A subsection"),  # a subsection: a subslide
        code("print_all();", out_lines=40),  # a long output: a subslide of its own
        md("#hashtag is not a heading"),
    ]
    assert slides.slide_types(cells) == ["slide", "-", "slide", "-", "fragment", "-", "subslide", "subslide", "subslide", "subslide"]


def test_check_fails_until_slides_py_runs_and_only_metadata_changes(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = {"cells": [md("# T"), md("Prose."), code("1")], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = folder / "new.ipynb"
    path.write_text(slides.dumps(nb), encoding="utf-8")
    script = [sys.executable, str(REPO / "scripts" / "slides.py")]
    check = subprocess.run(script + ["--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 1 and "new.ipynb cell 0: slide_type None, want 'slide'" in check.stdout, check.stdout
    assert subprocess.run(script + [str(path)], capture_output=True, text=True).returncode == 0
    once = path.read_text(encoding="utf-8")
    assert subprocess.run(script + [str(path)], capture_output=True, text=True).returncode == 0
    assert path.read_text(encoding="utf-8") == once, "idempotent"
    after = json.loads(once)
    assert [c["metadata"]["slideshow"]["slide_type"] for c in after["cells"]] == ["slide", "-", "fragment"]
    for cell in after["cells"]:
        cell["metadata"].pop("slideshow")
    assert after == nb, "only the slide metadata changed"
    assert subprocess.run(script + ["--check", str(path)], capture_output=True).returncode == 0
    # A stale type (a cell edited into a section heading) fails again; so does check_notebooks.
    stale = json.loads(once)
    stale["cells"][1]["source"] = "## Now a section"
    path.write_text(slides.dumps(stale), encoding="utf-8")
    check = subprocess.run(script + ["--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 1 and "cell 1: slide_type '-', want 'slide'" in check.stdout, check.stdout
    import check_notebooks

    assert any("slide_type" in p for p in check_notebooks.notebook_problems(path)), "check_notebooks runs the slide check"
    assert slides.applies_to(path) and not slides.applies_to(folder / "exercises" / "x.ipynb")


def test_a_chinese_notebook_presents_its_english_twins_slides(tmp_path):
    # notebooks/zh/<name> takes each cell's slide type from the English cell of the same id: the
    # Chinese explanation is long enough to give the figure after it a slide of its own, the
    # English one is not, and the English slides win.
    en_dir, zh_dir = tmp_path / "notebooks", tmp_path / "notebooks" / "zh"
    zh_dir.mkdir(parents=True)
    figure = code("show()")
    figure["outputs"] = [{"output_type": "display_data", "data": {"image/svg+xml": "<svg/>"}, "metadata": {}}]
    en = {"cells": [md("# T"), md("Short."), figure], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (en_dir / "ch09.ipynb").write_text(slides.dumps(en), encoding="utf-8")
    zh = json.loads(slides.dumps(en))
    zh["cells"][1]["source"] = "很长的解释。\n" * (slides.LONG_EXPLANATION_LINES + 1)
    assert slides.slide_types(zh["cells"])[2] == "subslide" and slides.slide_types(en["cells"])[2] == "fragment"
    (zh_dir / "ch09.ipynb").write_text(slides.dumps(zh), encoding="utf-8")
    script = [sys.executable, str(REPO / "scripts" / "slides.py")]
    assert subprocess.run(script + [str(zh_dir / "ch09.ipynb")], capture_output=True).returncode == 0
    types = [c["metadata"]["slideshow"]["slide_type"] for c in json.loads((zh_dir / "ch09.ipynb").read_text())["cells"]]
    assert types == ["slide", "-", "fragment"], "the English notebook's slides"
    assert subprocess.run(script + ["--check", str(zh_dir / "ch09.ipynb")], capture_output=True).returncode == 0
    assert not slides.applies_to(zh_dir / "ch09.ipynb"), "check_notebooks leaves the Chinese slides to the zh check"


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on PATH: `scripts/setup.sh browser` installs Debian's chromium")


def chromium_run(browser: str, profile: Path, url: str, *what: str) -> subprocess.CompletedProcess:
    """Headless Chromium on `url` with nothing of its own on the network, the page given 30 s
    of virtual time to build its slides."""
    args = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1280,800", "--virtual-time-budget=30000", *what, url,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=180)


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA PNG, without an image library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG file"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"an 8-bit RGB(A) PNG, not {header}"
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def test_a_chapter_opens_as_slides_in_headless_chromium(tmp_path):
    browser = chromium()
    port, token = free_port(), "llm-fs-slides-token"
    env = dict(os.environ, HEADLESS="1", LAB_PORT=str(port), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log = open(tmp_path / "lab.log", "w+")
    proc = subprocess.Popen(
        [str(REPO / "scripts" / "lab.sh"), "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/rise/{CHAPTER}?token={token}"
    try:
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and status is None:
            time.sleep(1)
            assert proc.poll() is None, "lab exited early:\n" + (tmp_path / "lab.log").read_text()
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    status = r.status
            except OSError:
                continue
        assert status == 200, "jupyterlab-rise serves /rise/<notebook>:\n" + (tmp_path / "lab.log").read_text()

        # The page: reveal.js ready, with one <section id="slide-H-V"> per slide and subslide.
        dom = chromium_run(browser, tmp_path / "profile-dom", url, "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        html = dom.stdout
        assert re.search(r'class="[^"]*\breveal\b[^"]*\bready\b', html), "reveal.js's deck, ready"
        cells = json.loads((REPO / "notebooks" / CHAPTER).read_text(encoding="utf-8"))["cells"]
        types = [c["metadata"]["slideshow"]["slide_type"] for c in cells]
        sections = re.findall(r'id="slide-(\d+)-(\d+)"', html)
        assert len(sections) == types.count("slide") + types.count("subslide"), f"{len(sections)} slides in the page, {types}"
        assert len({h for h, _ in sections}) == types.count("slide"), "one horizontal slide per section"
        assert "Chapter 1 — Understanding large language models" in html

        # The screenshot: the first slide drawn (text on a light page), not a blank page.
        shot = tmp_path / "slide.png"
        run = chromium_run(browser, tmp_path / "profile-shot", url, f"--screenshot={shot}")
        assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
        width, height, rows = png_pixels(shot)
        assert (width, height) == (1280, 800)
        bpp = len(rows[0]) // width
        pixels = [row[i:i + 3] for row in rows[::4] for i in range(0, len(row), 4 * bpp)]
        colours = set(pixels)
        dark = sum(1 for p in pixels if sum(p) < 3 * 128) / len(pixels)
        assert len(colours) >= 8, f"{len(colours)} colours: a blank page"
        assert 0.005 < dark < 0.5, f"{dark:.1%} of the page is dark: text on a light slide expected"
        keep = os.environ.get("LLM_FS_SLIDES_SCREENSHOT")
        if keep:  # to look at it
            shutil.copy(shot, keep)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
