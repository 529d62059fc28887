//! `llm serve` end to end: the built binary serves a tiny instruction-finetuned run (or the
//! same config with random weights) on a free port (`--port 0`, read from its "listening on"
//! line), and these tests talk HTTP to it: the OpenAI shapes of whole and streamed answers, every
//! kind of bad request (an OpenAI-style JSON error, and the server keeps serving), a full queue
//! (503), a client that disconnects mid-stream (its generation stops), chapter 7's judge scoring
//! through the server, and a Llama folder served through its own tokenizer.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use llm_from_scratch::ch07::{InstructionEntry, Judge};
use llm_from_scratch::tokenizer::{HfTokenizer, Tokenizer};
use serde_json::{json, Value};

/// The model's id: the run folder's name (given with --model-name to the random-weights model).
const MODEL: &str = "tiny-instruct";

/// A tiny config (GPT-2's vocabulary, width 32, 256 positions so that the judge's long prompts
/// fit) and a run of `llm finetune-instruct` with it (one epoch on ten entries), made once per
/// test binary: (config file, run folder).
fn inputs() -> &'static (PathBuf, PathBuf) {
    static INPUTS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    static MAKING: Mutex<()> = Mutex::new(());
    let _one = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    INPUTS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("llm-fs-cli-serve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (data, config) = common::instruct_inputs(&dir);
        std::fs::write(&config, r#"{"vocab_size": 50257, "context_length": 256, "emb_dim": 32, "n_heads": 2, "n_layers": 2, "drop_rate": 0.0, "qkv_bias": false}"#).unwrap();
        let out = dir.join(MODEL);
        let (d, c, o) = (data.to_str().unwrap(), config.to_str().unwrap(), out.to_str().unwrap());
        common::llm_succeeds(&["finetune-instruct", "--config", c, "--data", d, "--epochs", "1", "--lr", "1e-2", "--eval-freq", "1", "--eval-iter", "1", "--sample-tokens", "2", "--max-new-tokens", "4", "--out", o]);
        (config, out)
    })
}

/// The flags of the finetuned run.
fn finetuned() -> Vec<String> {
    vec!["--model".into(), inputs().1.to_str().unwrap().into()]
}

/// The flags of a model with the same config and random weights (seed 123), under the same name:
/// greedy decoding of random weights never meets <|endoftext|> in these tests (one chance in
/// 50,257 per token, and the same tokens every run), so answers run to max_tokens.
fn random_weights() -> Vec<String> {
    vec!["--config".into(), inputs().0.to_str().unwrap().into(), "--model-name".into(), MODEL.into()]
}

/// A running `llm serve`, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Start `llm serve <model> --port 0 <extra>` and wait for its "listening on" line.
    fn start(model: &[String], extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm"));
        cmd.arg("serve").args(model).args(["--port", "0"]).args(extra).env("OMP_NUM_THREADS", "1").env_remove("RUST_BACKTRACE");
        if let Some(dir) = common::store().local_dir {
            cmd.env("LLM_DATA_DIR", dir);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start llm serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("llm serve: listening on ").unwrap_or_else(|| panic!("not the listening line: {line:?}")).to_string();
        assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"), "a real port: {url}");
        Server { child, url }
    }

    fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().proxy(None).http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().into()
    }

    /// `POST path` with a raw body: (status, the JSON answer).
    fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let mut r = Self::agent().post(format!("{}{path}", self.url)).header("Content-Type", "application/json").send(body.to_string()).unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("HTTP {status}: not JSON ({e}): {text}")))
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, &body.to_string())
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let mut r = Self::agent().get(format!("{}{path}", self.url)).call().unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("HTTP {status}: not JSON ({e}): {text}")))
    }

    /// A streamed request: the JSON of each `data:` event before `data: [DONE]` (which must come).
    fn stream(&self, path: &str, body: &Value) -> Vec<Value> {
        let mut r = Self::agent().post(format!("{}{path}", self.url)).header("Content-Type", "application/json").send(body.to_string()).unwrap();
        assert_eq!(r.status().as_u16(), 200, "a stream");
        let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        let mut chunks = Vec::new();
        for line in BufReader::new(r.body_mut().as_reader()).lines() {
            let line = line.unwrap();
            let Some(data) = line.strip_prefix("data: ") else { continue };
            if data == "[DONE]" {
                return chunks;
            }
            chunks.push(serde_json::from_str(data).unwrap_or_else(|e| panic!("chunk not JSON ({e}): {data}")));
        }
        panic!("the stream ended without data: [DONE] after {chunks:?}");
    }

    /// The stats counter `key`.
    fn stat(&self, key: &str) -> u64 {
        self.get("/v1/stats").1[key].as_u64().unwrap_or_else(|| panic!("no {key} in /v1/stats"))
    }

    /// Wait (up to 30 s) until the stats counter `key` reaches `want`.
    fn wait_for_stat(&self, key: &str, want: u64) {
        let start = Instant::now();
        while self.stat(key) < want {
            assert!(start.elapsed() < Duration::from_secs(30), "{key} never reached {want}: {}", self.get("/v1/stats").1);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A good chat request, which must succeed.
    fn good_chat(&self) -> Value {
        let (status, v) = self.post("/v1/chat/completions", &chat_body("Name a primary color.", json!({"max_tokens": 3, "temperature": 0})));
        assert_eq!(status, 200, "a good request after the others: {v}");
        assert_eq!(v["object"], "chat.completion");
        v
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chat request with one user message and the extra fields of `extra`.
fn chat_body(message: &str, extra: Value) -> Value {
    let mut body = json!({"model": MODEL, "messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": message}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// The text of a stream's chunks: `choices[0].delta.content` (chat) or `choices[0].text`.
fn streamed_text(chunks: &[Value]) -> String {
    chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str().or_else(|| c["choices"][0]["text"].as_str())).collect()
}

#[test]
fn whole_and_streamed_answers_have_openai_shapes_and_agree() {
    let server = Server::start(&random_weights(), &[]);
    let (status, models) = server.get("/v1/models");
    assert_eq!((status, models["object"].as_str(), models["data"][0]["id"].as_str()), (200, Some("list"), Some(MODEL)), "{models}");
    assert_eq!(models["data"].as_array().unwrap().len(), 1, "one model");

    // Greedy chat, whole: the OpenAI shape, usage counts that add up.
    let body = chat_body("Name a primary color.", json!({"max_tokens": 8, "temperature": 0}));
    let (status, whole) = server.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{whole}");
    assert!(whole["id"].as_str().unwrap().starts_with("chatcmpl-") && whole["created"].as_u64().is_some() && whole["model"] == MODEL, "{whole}");
    let choice = &whole["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    let text = choice["message"]["content"].as_str().unwrap().to_string();
    let usage = &whole["usage"];
    let (prompt, completion) = (usage["prompt_tokens"].as_i64().unwrap(), usage["completion_tokens"].as_i64().unwrap());
    assert_eq!(usage["total_tokens"].as_i64(), Some(prompt + completion), "{usage}");
    assert!(prompt > 30, "the Alpaca prompt is over 30 tokens: {prompt}");
    match choice["finish_reason"].as_str() {
        Some("length") => assert_eq!(completion, 8, "length: max_tokens were generated"),
        Some("stop") => assert!(completion < 8, "stop: <|endoftext|> came first"),
        other => panic!("finish_reason {other:?}"),
    }

    // The same request streamed: the chunks' deltas add up to the same text, then the finish
    // chunk, then the usage chunk (stream_options.include_usage).
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let chunks = server.stream("/v1/chat/completions", &streamed);
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]), "{chunks:?}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant", "the first chunk names the role");
    assert_eq!(streamed_text(&chunks), text, "streamed and whole greedy answers agree");
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], choice["finish_reason"], "the finish chunk");
    assert_eq!(chunks[n - 1]["choices"], json!([]), "the usage chunk has no choices");
    assert_eq!(&chunks[n - 1]["usage"], usage, "the same token counts");
    assert!(chunks[..n - 1].iter().all(|c| c["usage"].is_null()), "usage: null on the other chunks");

    // Text completions, whole and streamed, agree too.
    let body = json!({"model": MODEL, "prompt": "The capital of France is", "max_tokens": 6, "temperature": 0});
    let (status, whole) = server.post("/v1/completions", &body);
    assert_eq!((status, whole["object"].as_str()), (200, Some("text_completion")), "{whole}");
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let chunks = server.stream("/v1/completions", &streamed);
    assert_eq!(streamed_text(&chunks), whole["choices"][0]["text"].as_str().unwrap());
    assert_eq!(whole["usage"]["prompt_tokens"], 5, "'The capital of France is' is 5 GPT-2 tokens");

    // Sampling: the same seed gives the same text; top-p 0 and top-k 1 are greedy.
    let sampled = |extra: Value| server.post("/v1/completions", &{
        let mut b = json!({"model": MODEL, "prompt": "The capital of France is", "max_tokens": 6, "temperature": 1.5});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    }).1["choices"][0]["text"].as_str().unwrap().to_string();
    assert_eq!(sampled(json!({"seed": 5})), sampled(json!({"seed": 5})), "seeded sampling is reproducible");
    let greedy = whole["choices"][0]["text"].as_str().unwrap();
    assert_eq!(sampled(json!({"top_k": 1, "seed": 1})), greedy, "top_k 1 is greedy");
    assert_eq!(sampled(json!({"top_p": 0.0, "seed": 2})), greedy, "top_p 0 keeps the most probable token only");

    // A stop sequence cuts the text before it and finishes with "stop".
    let cut = greedy.char_indices().nth(greedy.chars().count() / 2).map(|(i, _)| i).unwrap();
    let stop: String = greedy[cut..].chars().take(2).collect();
    let mut body = body.clone();
    body["stop"] = json!([stop]);
    let (_, stopped) = server.post("/v1/completions", &body);
    assert_eq!(stopped["choices"][0]["text"].as_str().unwrap(), &greedy[..greedy.find(&stop).unwrap()], "stop {stop:?} in {greedy:?}");
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");
    body["stream"] = json!(true);
    assert_eq!(streamed_text(&server.stream("/v1/completions", &body)), &greedy[..greedy.find(&stop).unwrap()], "streamed with the stop");

    // The chat page.
    let mut page = Server::agent().get(&server.url).call().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.body_mut().read_to_string().unwrap().contains("<html"), "GET / serves the chat page");
}

/// `POST`/`GET` with a raw socket (for bodies the HTTP client would refuse to send): the status
/// and the body.
fn raw_request(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer); // the server may reset the connection after answering
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[test]
fn bad_requests_get_openai_errors_and_the_server_keeps_serving() {
    let server = Server::start(&finetuned(), &["--max-body-bytes", "4096"]);
    let long = "word ".repeat(300);
    // (path, body, status, param, code)
    let cases: Vec<(&str, String, u16, Option<&str>, Option<&str>)> = vec![
        ("/v1/chat/completions", "{\"model\": ".into(), 400, None, Some("invalid_json")),
        ("/v1/chat/completions", "[1, 2]".into(), 400, None, Some("invalid_json")),
        ("/v1/chat/completions", json!({"messages": [{"role": "user", "content": "Hi"}]}).to_string(), 400, Some("model"), Some("missing_required_parameter")),
        ("/v1/chat/completions", json!({"model": MODEL}).to_string(), 400, Some("messages"), Some("missing_required_parameter")),
        ("/v1/chat/completions", json!({"model": MODEL, "messages": "Hi"}).to_string(), 400, Some("messages"), Some("invalid_type")),
        ("/v1/chat/completions", json!({"model": MODEL, "messages": [{"role": "user", "content": 7}]}).to_string(), 400, Some("messages[0].content"), Some("invalid_type")),
        ("/v1/chat/completions", json!({"model": MODEL, "messages": [{"role": "wizard", "content": "Hi"}]}).to_string(), 400, Some("messages[0].role"), Some("invalid_value")),
        ("/v1/chat/completions", chat_body("Hi", json!({"temperature": "warm"})).to_string(), 400, Some("temperature"), Some("invalid_type")),
        ("/v1/chat/completions", chat_body("Hi", json!({"stream": "yes"})).to_string(), 400, Some("stream"), Some("invalid_type")),
        ("/v1/chat/completions", chat_body("Hi", json!({"n": 2})).to_string(), 400, Some("n"), Some("invalid_value")),
        ("/v1/completions", json!({"model": MODEL, "prompt": 12}).to_string(), 400, Some("prompt"), Some("invalid_type")),
        ("/v1/chat/completions", json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}).to_string(), 404, Some("model"), Some("model_not_found")),
        ("/v1/chat/completions", chat_body(&long, json!({})).to_string(), 400, Some("messages"), Some("context_length_exceeded")),
        ("/v1/completions", json!({"model": MODEL, "prompt": long}).to_string(), 400, Some("prompt"), Some("context_length_exceeded")),
        ("/v1/chat/completions", chat_body("Hi", json!({"max_tokens": 0})).to_string(), 400, Some("max_tokens"), Some("invalid_value")),
        ("/v1/chat/completions", chat_body("Hi", json!({"max_tokens": 100000})).to_string(), 400, Some("max_tokens"), Some("invalid_value")),
        ("/v1/chat/completions", chat_body("Hi", json!({"max_tokens": 2.5})).to_string(), 400, Some("max_tokens"), Some("invalid_type")),
    ];
    for (path, body, status, param, code) in cases {
        let (got, v) = server.post_raw(path, &body);
        let error = &v["error"];
        assert_eq!(got, status, "{path} {body}: {v}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()) && error["type"].as_str().is_some(), "OpenAI's error shape: {v}");
        assert_eq!((error["param"].as_str(), error["code"].as_str()), (param, code), "{body}: {v}");
        server.good_chat();
    }
    // Routes and methods that do not exist.
    let (status, v) = server.get("/v1/nothing");
    assert_eq!((status, v["error"]["code"].as_str()), (404, Some("unknown_url")), "{v}");
    let (status, v) = server.get("/v1/chat/completions");
    assert_eq!((status, v["error"]["code"].as_str()), (405, Some("method_not_allowed")), "{v}");
    server.good_chat();
    // A body over --max-body-bytes (sent whole with its length, as a client would).
    let big = chat_body(&"x".repeat(5000), json!({})).to_string();
    let request = format!("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}", big.len());
    let (status, body) = raw_request(&server.addr(), request.as_bytes());
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("413 body not JSON ({e}): {body}"));
    assert_eq!((status, v["error"]["code"].as_str()), (413, Some("request_too_large")), "{v}");
    server.good_chat();
    assert_eq!(server.stat("failed"), 0, "no generation failed");
}

#[test]
fn a_full_queue_answers_503_and_a_disconnected_stream_stops_its_generation() {
    // Slow tokens (50 ms each) so that requests overlap; one request may wait.
    let server = Server::start(&random_weights(), &["--queue", "1", "--token-delay-ms", "50"]);
    let body = chat_body("Name the largest planet.", json!({"max_tokens": 200, "temperature": 0, "stream": true}));
    let body = body.to_string();
    let mut first = TcpStream::connect(server.addr()).unwrap();
    write!(first, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    // Read until the first token's chunk: the worker is generating this request.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("data: {") {
        let n = first.read(&mut buf).unwrap();
        assert!(n > 0, "the stream closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    // A second request waits in the queue...
    let url = server.url.clone();
    let waiting = std::thread::spawn(move || {
        let body = chat_body("Hi", json!({"max_tokens": 2, "temperature": 0}));
        let mut r = Server::agent().post(format!("{url}/v1/chat/completions")).send(body.to_string()).unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    });
    server.wait_for_stat("queued", 1);
    // ... so a third finds the queue full.
    let (status, v) = server.post("/v1/chat/completions", &chat_body("Hi", json!({"max_tokens": 2})));
    assert_eq!((status, v["error"]["type"].as_str(), v["error"]["code"].as_str()), (503, Some("server_error"), Some("queue_full")), "{v}");
    assert_eq!(server.stat("rejected"), 1);

    // The first client goes away mid-stream: its generation stops and the waiting request runs.
    drop(first);
    let (status, answer) = waiting.join().unwrap();
    assert_eq!(status, 200, "the queued request is answered: {answer}");
    server.wait_for_stat("cancelled", 1);
    let stopped_at = server.stat("last_cancelled_tokens");
    assert!((1..200).contains(&stopped_at), "generation stopped early, after {stopped_at} of 200 tokens");
    server.wait_for_stat("completed", 1); // counted just after its answer is sent
    assert_eq!(server.stat("completed"), 1, "the waiting request");
    server.good_chat();
    assert_eq!(server.stat("queued"), 0);
}

#[test]
fn chapter_7_judge_scores_through_llm_serve() {
    let server = Server::start(&finetuned(), &[]);
    assert_eq!(server.get("/v1/models").1["data"][0]["id"], MODEL, "the run folder's name");
    let judge = Judge::openai(&format!("{}/v1/chat/completions", server.url), MODEL);
    let entries: Vec<InstructionEntry> = [
        ("Name a primary color.", "", "Red is a primary color.", "Blue."),
        ("Translate to French.", "Thank you", "Merci.", "Merci beaucoup."),
        ("What is 2 plus 2?", "", "2 plus 2 is 4.", "5"),
    ]
    .iter()
    .map(|(i, x, o, r)| InstructionEntry { model_response: Some(r.to_string()), ..InstructionEntry::new(i, x, o) })
    .collect();
    let mut seen = Vec::new();
    let scores = judge.generate_model_scores(&entries, &mut |i, s| seen.push((i, s))).unwrap_or_else(|e| panic!("the judge's requests are accepted: {e}"));
    assert_eq!(scores.len(), entries.len(), "a score (or None) for every entry");
    assert!(scores.iter().flatten().all(|&s| s <= 100), "{scores:?}");
    assert_eq!(seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1, 2]);
    server.wait_for_stat("completed", 3);
    assert_eq!(server.stat("completed"), 3, "one generation per entry");
    // The judge samples at temperature 0 with a seed: asking again gives the same replies.
    let reply = judge.query_model("Respond with the integer number only.").unwrap();
    assert_eq!(judge.query_model("Respond with the integer number only.").unwrap(), reply, "greedy replies repeat");
}

#[test]
fn a_llama_folder_is_served_through_its_tokenizer_like_llm_generate() {
    // The tiny random Llama of tests/fixtures/hf_llama_qwen_tiny.py (its tokenizer.json knows
    // only <|begin_of_text|> and <|end_of_text|>: the chat headers are plain text to it).
    let dir = common::fixture("hf_llama_qwen_tiny.py", &[], "hf_llama_qwen_tiny", "io.safetensors").join("llama_tied");
    let dir = dir.to_str().unwrap();
    let server = Server::start(&["--weights".into(), dir.into(), "--model-name".into(), MODEL.into()], &[]);
    let prompt = "Every effort moves you";
    let (status, v) = server.post("/v1/completions", &json!({"model": MODEL, "prompt": prompt, "max_tokens": 5, "temperature": 0}));
    assert_eq!(status, 200, "{v}");
    let text = v["choices"][0]["text"].as_str().unwrap();
    let generated = common::llm_ok(&["generate", "--weights", dir, "--prompt", prompt, "--max-new-tokens", "5"]);
    assert_eq!(generated.trim_end_matches('\n'), format!("<|begin_of_text|>{prompt}{text}"), "the same greedy tokens as llm generate (which prints the prompt, BOS included)");
    let tok = HfTokenizer::from_file(Path::new(dir).join("tokenizer.json")).unwrap();
    let with_bos = tok.encode_with_special_tokens(prompt).unwrap().len();
    assert_eq!(v["usage"]["prompt_tokens"].as_u64(), Some(with_bos as u64), "the raw prompt gets the tokenizer's BOS");
    // Chat: Llama 3's format, written by hand.
    let (status, v) = server.post("/v1/chat/completions", &chat_body("Hi", json!({"max_tokens": 3, "temperature": 0})));
    assert_eq!(status, 200, "{v}");
    let chat = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    assert_eq!(v["usage"]["prompt_tokens"].as_u64(), Some(tok.encode_text(chat).unwrap().len() as u64), "the Llama 3 chat prompt");
}
