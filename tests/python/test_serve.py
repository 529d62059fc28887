"""`llm serve` with real clients: the official `openai` package and a headless Chromium on the chat
page.

A tiny instruction-finetuned model is made once (`llm finetune-instruct` on ten entries, a
3.2M-parameter GPT at width 32: a few seconds), then one server is started on it on a free port
(`--port 0`, the port read from its one stdout line). Through the `openai` client: the model list,
a chat completion (its usage counts add up, and greedy decoding gives what `llm respond` says for
the same instruction), the same completion streamed (the chunks add up to the same text), a text
completion, and errors as the client's exception classes. In the browser, driven over the Chrome
DevTools Protocol: the page names the model, a message typed and sent comes back as a streamed
reply (the request the page made is a streamed chat completion with the whole conversation), and a
request the server refuses shows the server's error message.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from test_slides import chromium  # Chromium on PATH, or a skip that says how to install it

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "src" / "bin" / "llm" / "serve" / "chat.html"
LISTENING = re.compile(r"^llm serve: listening on (http://127\.0\.0\.1:(\d+))$")
SEEN = "What is the capital of France?"  # a training entry's instruction
MAX_TOKENS = 8

ENTRIES = [
    ("What is the capital of France?", "", "The capital of France is Paris."),
    ("Convert the active sentence to passive.", "The chef cooks the meal.", "The meal is cooked by the chef."),
    ("Name a primary color.", "", "Red is a primary color."),
    ("What is the opposite of hot?", "", "The opposite of hot is cold."),
    ("What is 2 plus 2?", "", "2 plus 2 is 4."),
    ("Give a synonym of fast.", "", "A synonym of fast is quick."),
    ("Correct the spelling.", "Recieve", "The correct spelling is Receive."),
    ("Name the largest planet.", "", "Jupiter is the largest planet."),
    ("Translate to French.", "Thank you", "Merci."),
    ("What is the plural of mouse?", "", "The plural of mouse is mice."),
]
# GPT-2's vocabulary at width 32, as the Rust CLI tests' tiny instruction runs (tests/common).
TINY_CONFIG = {"vocab_size": 50257, "context_length": 96, "emb_dim": 32, "n_heads": 2, "n_layers": 2, "drop_rate": 0.0, "qkv_bias": False}


def llm_binary(into: Path) -> Path:
    """The `llm` program, built first as `util::cli::llm_command()` does (a no-op after `make
    test`'s `cargo build --bins`), and copied into `into`: a build of another checkout sharing
    the target folder cannot swap it during the tests."""
    build = subprocess.run(["cargo", "build", "--quiet", "--bin", "llm"], cwd=REPO, capture_output=True, text=True, timeout=3600)
    assert build.returncode == 0, f"cargo build --bin llm failed:\n{build.stderr[-4000:]}"
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    binary = (target if target.is_absolute() else REPO / target) / "debug" / "llm"
    assert binary.is_file(), f"{binary} missing after cargo build"
    return Path(shutil.copy2(binary, into / "llm"))


@pytest.fixture(scope="module")
def llm(tmp_path_factory) -> Path:
    return llm_binary(tmp_path_factory.mktemp("bin"))


@pytest.fixture(scope="module")
def run_dir(llm, tmp_path_factory) -> Path:
    """A tiny model finetuned on ten instructions by `llm finetune-instruct` (a few seconds)."""
    folder = tmp_path_factory.mktemp("serve")
    data, config, run = folder / "data.json", folder / "config.json", folder / "run"
    data.write_text(json.dumps([{"instruction": i, "input": x, "output": o} for i, x, o in ENTRIES]))
    config.write_text(json.dumps(TINY_CONFIG))
    args = ["finetune-instruct", "--config", config, "--data", data, "--epochs", "4", "--lr", "1e-2", "--eval-freq", "1",
            "--eval-iter", "1", "--sample-tokens", "2", "--max-new-tokens", "4", "--out", run]
    done = subprocess.run([llm, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"llm finetune-instruct failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert (run / "checkpoint.safetensors").is_file(), "the run saved its model"
    return run


@pytest.fixture(scope="module")
def server(llm, run_dir, tmp_path_factory):
    """`llm serve --model RUN --port 0`: its base URL once it printed its listening line."""
    log_path = tmp_path_factory.mktemp("serve-log") / "serve.log"
    log = open(log_path, "w+")
    proc = subprocess.Popen(
        [llm, "serve", "--model", run_dir, "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read_stdout():  # the listening line, then keep the pipe drained
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            ready.set()
        ready.set()

    threading.Thread(target=read_stdout, daemon=True).start()
    try:
        assert ready.wait(120), "no listening line within 120 s:\n" + log_path.read_text()
        first = lines[0] if lines else None
        match = LISTENING.match(first or "")
        assert match, f"stdout's first line {first!r} is `llm serve: listening on http://127.0.0.1:PORT`:\n" + log_path.read_text()
        assert int(match[2]) != 0, "--port 0 asks for a free port and the line gives the real one"
        yield match[1]
        assert proc.poll() is None, "the server kept serving through every test:\n" + log_path.read_text()
        assert lines == [first], f"the listening line is the only line on stdout: {lines}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def client(server):
    openai = pytest.importorskip("openai", reason="the `openai` package (environment.yml) is not installed")
    # The server wants no key; the client insists on one. No retries: an error is the answer.
    return openai.OpenAI(base_url=f"{server}/v1", api_key="not-needed", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def model_id(client) -> str:
    models = client.models.list().data
    assert len(models) == 1, f"one model served: {models}"
    return models[0].id


def chat(client, model_id, messages, **kwargs):
    return client.chat.completions.create(model=model_id, messages=messages, max_tokens=MAX_TOKENS, temperature=0, seed=123, **kwargs)


@pytest.fixture(scope="module")
def greedy_reply(client, model_id):
    """The greedy reply to one training instruction, not streamed."""
    return chat(client, model_id, [{"role": "user", "content": SEEN}])


def test_the_model_list_names_the_run(client, model_id, run_dir):
    (model,) = client.models.list().data
    assert model.object == "model", model
    assert model.id == model_id == run_dir.name == "run", f"without --model-name, the id is the run folder's name: {model.id}"


def test_a_chat_completion_counts_its_tokens(greedy_reply, model_id):
    reply = greedy_reply
    assert reply.object == "chat.completion" and reply.model == model_id, reply
    (choice,) = reply.choices
    assert choice.index == 0 and choice.message.role == "assistant", choice
    assert isinstance(choice.message.content, str), choice.message
    assert choice.finish_reason in ("stop", "length"), choice.finish_reason
    usage = reply.usage
    assert usage.prompt_tokens > len(SEEN.split()), f"the prompt is the Alpaca template around the message: {usage}"
    assert 1 <= usage.completion_tokens <= MAX_TOKENS, usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage
    if choice.finish_reason == "length":
        assert usage.completion_tokens == MAX_TOKENS, f"stopped by the limit after exactly max_tokens: {usage}"


def test_greedy_chat_says_what_llm_respond_says(greedy_reply, llm, run_dir):
    # One user message becomes the Alpaca prompt of that instruction: the same model, greedy,
    # answers as `llm respond` (which strips the surrounding whitespace).
    said = subprocess.run([llm, "respond", "--model", run_dir, "--instruction", SEEN, "--max-new-tokens", str(MAX_TOKENS)],
                          capture_output=True, text=True, timeout=300)
    assert said.returncode == 0, said.stderr
    assert greedy_reply.choices[0].message.content.strip() == said.stdout.strip(), (greedy_reply.choices[0].message.content, said.stdout)


def test_a_streamed_chat_completion_adds_up_to_the_same_reply(client, model_id, greedy_reply):
    chunks = list(chat(client, model_id, [{"role": "user", "content": SEEN}], stream=True))
    assert chunks, "chunks came"
    assert all(c.object == "chat.completion.chunk" and c.model == model_id for c in chunks), chunks[0]
    assert len({c.id for c in chunks}) == 1, "one id for the whole stream"
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    text = "".join(pieces)
    assert text == greedy_reply.choices[0].message.content, "streamed and not streamed: the same greedy reply"
    assert sum(1 for p in pieces if p) >= min(2, greedy_reply.usage.completion_tokens), f"token by token: {pieces}"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == greedy_reply.choices[0].finish_reason, finishes
    assert all(f is None for f in finishes[:-1]), f"only the last chunk finishes: {finishes}"


def test_a_text_completion(client, model_id):
    reply = client.completions.create(model=model_id, prompt="The capital of France is", max_tokens=5, temperature=0)
    assert reply.object == "text_completion" and reply.model == model_id, reply
    (choice,) = reply.choices
    assert isinstance(choice.text, str) and choice.finish_reason in ("stop", "length"), choice
    usage = reply.usage
    assert 1 <= usage.completion_tokens <= 5 and usage.prompt_tokens == 5, f"'The capital of France is' is 5 GPT-2 tokens: {usage}"
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage
    streamed = client.completions.create(model=model_id, prompt="The capital of France is", max_tokens=5, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == choice.text, "streamed: the same greedy text"


def test_errors_reach_the_client_as_its_exceptions(client, model_id):
    import openai

    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert unknown.value.status_code == 404 and "no-such-model" in str(unknown.value), unknown.value
    for bad in (0, 10**6):
        with pytest.raises(openai.BadRequestError) as out_of_range:
            client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "hi"}], max_tokens=bad)
        assert out_of_range.value.status_code == 400 and "max_tokens" in str(out_of_range.value), out_of_range.value
        assert isinstance(out_of_range.value.body, dict) and out_of_range.value.body.get("message"), "an OpenAI-style error body"
    assert client.models.list().data[0].id == model_id, "and the server goes on serving"


# --- The chat page --------------------------------------------------------------------------------


def test_the_page_is_one_self_contained_file():
    html = PAGE.read_text(encoding="utf-8")
    for needle in ('id="prompt"', 'id="send"', 'id="stop"', 'id="messages"', 'id="temperature"', 'id="max-tokens"', 'id="system"'):
        assert needle in html, f"the page has {needle}"
    for label in ("prompt", "temperature", "max-tokens", "system"):
        assert f'for="{label}"' in html, f"#{label} has a label"
    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//""", html)
    assert not external, f"nothing loaded from elsewhere (the server may run offline): {external}"
    assert not re.search(r"<script[^>]*\bsrc=|<link[^>]*stylesheet", html), "script and styles inline"


def test_the_server_serves_the_page(server):
    with urllib.request.urlopen(f"{server}/", timeout=30) as r:
        assert r.status == 200 and r.headers.get_content_type() == "text/html", r.headers
        body = r.read().decode("utf-8")
    assert body == PAGE.read_text(encoding="utf-8"), "GET / is chat.html as committed"


class Browser:
    """Headless Chromium driven over the Chrome DevTools Protocol (one websocket, the flat
    session mode): enough to open a page, type, click, read the DOM and watch its requests."""

    def __init__(self, binary: str, profile: Path):
        import websocket  # websocket-client (environment.yml)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1280,900", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=open(profile.parent / "chromium.log", "w"), start_new_session=True,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and len(port_file.read_text().split()) == 2):
            assert self.proc.poll() is None and time.monotonic() < deadline, "Chromium did not open its DevTools port"
            time.sleep(0.1)
        port, path = port_file.read_text().split()
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=30, suppress_origin=True)
        self.next_id, self.events, self.session = 0, [], None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]
            self.events.append(reply)

    def navigate(self, url: str, timeout: float = 60):
        """Open `url` and wait for its load event."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            assert time.monotonic() < deadline, f"{url} did not load within {timeout} s"
            self.events.append(json.loads(self.ws.recv()))

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, f"{expression}: {result['exceptionDetails']}"
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 60):
        """The value of `expression` once it is truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; the page:\n" + (self.js("document.body.innerText") or ""))

    def click(self, selector: str):
        """A real mouse click in the middle of the element (it must be visible and on top)."""
        x, y = self.js(f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        assert self.js(f"document.elementFromPoint({x}, {y}).closest({selector!r}) !== null"), f"{selector} is visible and on top"
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type(self, selector: str, text: str):
        self.js(f"document.querySelector({selector!r}).focus()")
        self.call("Input.insertText", text=text)

    def set_value(self, selector: str, value: str):
        self.js(f"(() => {{ const e = document.querySelector({selector!r}); e.value = {value!r}; e.dispatchEvent(new Event('input', {{bubbles: true}})); }})()")

    def requests(self, url_end: str) -> list[dict]:
        """The requests the page sent to a URL ending with `url_end`, in order."""
        self.ws.settimeout(0.2)  # collect the events that came since the last call
        try:
            while True:
                self.events.append(json.loads(self.ws.recv()))
        except Exception:  # websocket.WebSocketTimeoutException: nothing more for now
            pass
        finally:
            self.ws.settimeout(30)
        sent = [e["params"]["request"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]
        return [r for r in sent if r["url"].endswith(url_end)]

    def close(self):
        try:
            self.ws.close()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)


LAST_REPLY = """(() => {
  const all = document.querySelectorAll('#messages .assistant');
  const a = all[all.length - 1];
  return a && a.dataset.state !== 'streaming' && {state: a.dataset.state, text: a.querySelector('.content').textContent,
    chunks: Number(a.dataset.chunks), finish: a.dataset.finishReason, count: all.length};
})()"""


def test_the_chat_page_streams_a_reply_in_headless_chromium(server, client, model_id, greedy_reply, tmp_path):
    browser = Browser(chromium(), tmp_path / "profile")
    try:
        browser.navigate(f"{server}/")
        shown = browser.wait_for(f"document.getElementById('model').textContent === {model_id!r} && document.getElementById('model').textContent",
                                 "the model's name from /v1/models")
        assert shown == model_id
        browser.set_value("#temperature", "0")
        browser.set_value("#max-tokens", str(MAX_TOKENS))
        browser.type("#prompt", SEEN)
        browser.click("#send")
        reply = browser.wait_for(LAST_REPLY, "the streamed reply")
        want = greedy_reply.choices[0].message.content
        assert reply["state"] == "done" and reply["text"] == want, f"the page shows the greedy reply {want!r}: {reply}"
        assert reply["text"].strip(), "a reply with text in it"
        assert reply["finish"] == greedy_reply.choices[0].finish_reason, reply
        assert reply["chunks"] >= min(2, greedy_reply.usage.completion_tokens), f"shown token by token: {reply}"
        (sent,) = browser.requests("/v1/chat/completions")
        body = json.loads(sent["postData"])
        assert sent["method"] == "POST" and body["stream"] is True, body
        assert body["model"] == model_id and body["messages"] == [{"role": "user", "content": SEEN}], body
        assert body["temperature"] == 0 and body["max_tokens"] == MAX_TOKENS, body

        # A second turn sends the whole conversation.
        browser.type("#prompt", "Name a primary color.")
        browser.js("document.getElementById('prompt').dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))")
        browser.wait_for(LAST_REPLY.replace("a.dataset.state !==", "all.length === 2 && a.dataset.state !=="), "the second reply")
        second = json.loads(browser.requests("/v1/chat/completions")[1]["postData"])
        assert second["messages"] == [
            {"role": "user", "content": SEEN}, {"role": "assistant", "content": want}, {"role": "user", "content": "Name a primary color."},
        ], second["messages"]

        # A request the server refuses: its error message is shown, and no empty reply stays.
        try:
            client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "hi"}], max_tokens=10**6)
            raise AssertionError("max_tokens=10**6 was accepted")
        except Exception as e:  # openai.BadRequestError, checked in test_errors_...
            message = e.body["message"]
        browser.set_value("#max-tokens", str(10**6))
        browser.type("#prompt", "hi")
        browser.click("#send")
        error = browser.wait_for("document.getElementById('error').textContent", "the error message")
        assert message in error, f"the server's message {message!r} is shown: {error!r}"
        counts = browser.js("[...document.querySelectorAll('#messages .message')].map(m => m.className).join(' / ')")
        assert counts == "message user / message assistant / message user / message assistant", f"the failed turn is removed: {counts}"
        assert browser.js("document.getElementById('prompt').value") == "hi", "the message is back in the box, to send again"
        assert browser.js("document.getElementById('send').disabled") is False, "the page is ready for the next message"
    finally:
        browser.close()
