//! `llm bench serve --clients 32 --requests 4`: a load test of `llm serve`. It starts the server
//! (this program, `llm serve --config tiny --port 0`) and runs `--clients` concurrent streaming
//! clients, each sending `--requests` chat completions one after the other, and prints one JSON
//! line: requests completed and failed, generated tokens per second in all, and the median and
//! 99th percentile of the time to first token and of the whole request's latency.
//!
//! A request fails when its answer is not a complete stream (a 503 included: the server's queue
//! is `--queue`, by default as long as there are clients, so none should be refused) or when
//! it takes longer than `--timeout-s`; any failure makes the exit status 1, so no request may
//! be lost or hang.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use serde_json::{json, Value};

use super::median;

/// Arguments of `llm bench serve`.
#[derive(Args, Debug)]
pub struct ServeBenchArgs {
    /// The served model: a preset or JSON config file, random weights.
    #[arg(long, default_value = "tiny")]
    pub config: String,
    /// Concurrent streaming clients.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Requests each client sends, one after the other.
    #[arg(long, default_value_t = 4)]
    pub requests: usize,
    /// Tokens per answer (greedy decoding of random weights runs to this many).
    #[arg(long, default_value_t = 32)]
    pub max_tokens: i64,
    /// The server's queue (`llm serve --queue`; default: the number of clients).
    #[arg(long)]
    pub queue: Option<usize>,
    /// CPU threads of the server's libtorch (`llm serve --threads`; default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// A request still unanswered after this many seconds counts as failed.
    #[arg(long, default_value_t = 300)]
    pub timeout_s: u64,
}

#[derive(Serialize)]
struct ServeBench {
    bench: &'static str,
    config: String,
    clients: usize,
    requests_per_client: usize,
    max_tokens: i64,
    queue: usize,
    threads: Option<i32>,
    completed: usize,
    failed: usize,
    tokens: i64,
    wall_s: f64,
    tokens_per_s: f64,
    ttft_p50_ms: f64,
    ttft_p99_ms: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
}

/// The server process, stopped when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One finished request: time to first token, latency, tokens generated.
struct Timing {
    ttft: Duration,
    latency: Duration,
    tokens: i64,
}

/// The `q`-th quantile (0..=1) of `v` by the nearest rank, in milliseconds.
fn quantile_ms(v: &[Duration], q: f64) -> f64 {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    if ms.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len());
    ms[rank - 1]
}

/// The median of `v` in milliseconds (NaN, printed as null, when empty).
fn median_ms(v: &[Duration]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    median(v.iter().map(|d| d.as_secs_f64() * 1e3).collect())
}

/// One streamed chat completion; an error says why it failed.
fn request(agent: &ureq::Agent, url: &str, body: &Value) -> Result<Timing> {
    let start = Instant::now();
    let mut response = agent.post(url).header("Content-Type", "application/json").send(body.to_string())?;
    let status = response.status().as_u16();
    if status != 200 {
        bail!("HTTP {status}: {}", response.body_mut().read_to_string().unwrap_or_default());
    }
    let mut ttft = None;
    let mut tokens = None;
    for line in BufReader::new(response.body_mut().as_reader()).lines() {
        let line = line?;
        let Some(data) = line.strip_prefix("data: ") else { continue };
        if data == "[DONE]" {
            let (Some(ttft), Some(tokens)) = (ttft, tokens) else { bail!("the stream ended without a token or without usage") };
            return Ok(Timing { ttft, latency: start.elapsed(), tokens });
        }
        let chunk: Value = serde_json::from_str(data).with_context(|| format!("a chunk that is not JSON: {data}"))?;
        if ttft.is_none() && chunk["choices"][0]["delta"]["content"].is_string() {
            ttft = Some(start.elapsed());
        }
        if let Some(n) = chunk["usage"]["completion_tokens"].as_i64() {
            tokens = Some(n);
        }
    }
    bail!("the stream ended without data: [DONE]")
}

/// Run `llm bench serve`.
pub fn serve_bench(args: ServeBenchArgs) -> Result<()> {
    if args.clients == 0 || args.requests == 0 {
        bail!("--clients and --requests must be at least 1");
    }
    let queue = args.queue.unwrap_or(args.clients);
    let exe = std::env::current_exe().context("finding this program to start llm serve")?;
    let mut command = Command::new(exe);
    command.args(["serve", "--config", &args.config, "--model-name", "bench", "--port", "0", "--queue", &queue.to_string()]);
    if let Some(t) = args.threads {
        command.args(["--threads", &t.to_string()]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting llm serve")?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let server = ServerProcess(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let base = line.trim().strip_prefix("llm serve: listening on ").with_context(|| format!("llm serve did not start: {line:?}"))?.to_string();
    let url = format!("{base}/v1/chat/completions");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(args.timeout_s)))
        .build()
        .into();
    let instructions = ["Name a primary color.", "What is the capital of France?", "Give a synonym of fast.", "Name the largest planet."];
    let start = Instant::now();
    let results: Vec<Result<Timing>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.clients)
            .map(|c| {
                let (agent, url) = (agent.clone(), url.clone());
                scope.spawn(move || {
                    (0..args.requests)
                        .map(|r| {
                            let body = json!({
                                "model": "bench", "max_tokens": args.max_tokens, "temperature": 0, "stream": true,
                                "stream_options": {"include_usage": true},
                                "messages": [{"role": "user", "content": instructions[(c + r) % instructions.len()]}],
                            });
                            request(&agent, &url, &body)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| vec![Err(anyhow::anyhow!("a client thread panicked"))])).collect()
    });
    let wall = start.elapsed().as_secs_f64();
    drop(server);
    let mut timings = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(t) => timings.push(t),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let tokens: i64 = timings.iter().map(|t| t.tokens).sum();
    let ttfts: Vec<Duration> = timings.iter().map(|t| t.ttft).collect();
    let latencies: Vec<Duration> = timings.iter().map(|t| t.latency).collect();
    let report = ServeBench {
        bench: "serve",
        config: args.config,
        clients: args.clients,
        requests_per_client: args.requests,
        max_tokens: args.max_tokens,
        queue,
        threads: args.threads,
        completed: timings.len(),
        failed: errors.len(),
        tokens,
        wall_s: wall,
        tokens_per_s: tokens as f64 / wall,
        ttft_p50_ms: median_ms(&ttfts),
        ttft_p99_ms: quantile_ms(&ttfts, 0.99),
        latency_p50_ms: median_ms(&latencies),
        latency_p99_ms: quantile_ms(&latencies, 0.99),
    };
    println!("{}", serde_json::to_string(&report)?);
    if let Some(first) = errors.first() {
        bail!("{} of {} requests failed; the first: {first}", errors.len(), args.clients * args.requests);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!((quantile_ms(&v, 0.5), quantile_ms(&v, 0.99), quantile_ms(&v, 1.0)), (50.0, 99.0, 100.0));
        assert_eq!(quantile_ms(&v[..1], 0.99), 1.0, "one value is every quantile");
    }
}
