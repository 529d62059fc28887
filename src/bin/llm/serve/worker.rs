//! The generation worker: one thread owns the model and its KV cache and answers the queued
//! requests one after the other, sending the text token by token on each request's channel.
//! A request whose channel is closed (its client went away) stops at the next token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use llm_from_scratch::bonus_kv_cache::{next_token_logits, scan_stop_sequences, Sampling, StopScan};
use serde_json::{json, Value};
use tch::{Device, Tensor};
use tokio::sync::mpsc::UnboundedSender;

use super::model::{ModelInfo, Network};

/// One queued request: the prompt's ids and how to generate.
pub struct Job {
    pub prompt_ids: Vec<i64>,
    pub max_tokens: i64,
    pub sampling: Sampling,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    pub events: UnboundedSender<Event>,
}

/// What the worker tells the request's handler.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// New text of the response.
    Delta(String),
    /// The response is complete: `"stop"` (end token or stop sequence) or `"length"` (max_tokens).
    Done { finish_reason: &'static str, completion_tokens: i64 },
    /// Generation failed (the message is for the client).
    Failed(String),
}

/// Counters shown by `GET /v1/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests accepted into the queue and not yet taken by the worker.
    pub queued: AtomicU64,
    /// Requests answered to the end.
    pub completed: AtomicU64,
    /// Requests stopped because their client disconnected (before or during generation).
    pub cancelled: AtomicU64,
    /// Requests refused with 503 because the queue was full.
    pub rejected: AtomicU64,
    /// Requests whose generation failed.
    pub failed: AtomicU64,
    /// Tokens generated in all (cancelled requests' included).
    pub tokens_generated: AtomicU64,
    /// Tokens the last cancelled request had generated when it stopped.
    pub last_cancelled_tokens: AtomicU64,
}

impl Stats {
    /// The counters as JSON.
    pub fn to_json(&self) -> Value {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        json!({
            "queued": get(&self.queued), "completed": get(&self.completed), "cancelled": get(&self.cancelled),
            "rejected": get(&self.rejected), "failed": get(&self.failed), "tokens_generated": get(&self.tokens_generated),
            "last_cancelled_tokens": get(&self.last_cancelled_tokens),
        })
    }
}

/// How a job ended.
enum Outcome {
    Completed(i64),
    Cancelled(i64),
    Failed(i64),
}

/// Answer jobs until every sender of `jobs` is gone. `token_delay` slows each token down (for
/// tests of disconnects and of the queue).
pub fn run(network: Network, info: Arc<ModelInfo>, jobs: Receiver<Job>, stats: Arc<Stats>, device: Device, token_delay: Duration) {
    let model = network.cached();
    let mut cache = model.new_cache();
    let _no_grad = tch::no_grad_guard();
    while let Ok(job) = jobs.recv() {
        stats.queued.fetch_sub(1, Ordering::SeqCst);
        let outcome = if job.events.is_closed() {
            Outcome::Cancelled(0)
        } else {
            generate(model, &mut cache, &info, &job, device, token_delay)
        };
        let tokens = match outcome {
            Outcome::Completed(n) => {
                stats.completed.fetch_add(1, Ordering::SeqCst);
                n
            }
            Outcome::Cancelled(n) => {
                stats.last_cancelled_tokens.store(n as u64, Ordering::SeqCst);
                stats.cancelled.fetch_add(1, Ordering::SeqCst);
                eprintln!("llm serve: client disconnected; generation stopped after {n} of at most {} tokens", job.max_tokens);
                n
            }
            Outcome::Failed(n) => {
                stats.failed.fetch_add(1, Ordering::SeqCst);
                n
            }
        };
        stats.tokens_generated.fetch_add(tokens as u64, Ordering::SeqCst);
    }
}

/// Generate one response with the KV cache, sending its text as it becomes final.
fn generate(
    model: &dyn llm_from_scratch::bonus_kv_cache::CachedLm,
    cache: &mut llm_from_scratch::bonus_kv_cache::KvCache,
    info: &ModelInfo,
    job: &Job,
    device: Device,
    token_delay: Duration,
) -> Outcome {
    if let Some(seed) = job.seed {
        llm_from_scratch::set_seed(seed);
    }
    cache.reset();
    let mut idx = Tensor::from_slice(&job.prompt_ids).unsqueeze(0).to_device(device); // [1, num_tokens]
    let mut generated: Vec<u32> = Vec::new();
    let mut sent = 0; // bytes of the text already sent
    let mut finish_reason = "length";
    let mut text = String::new();
    let mut cut = None; // where a stop sequence ended the text
    let send = |event: Event| job.events.send(event).is_ok();
    for _ in 0..job.max_tokens {
        let logits = next_token_logits(model, cache, &idx); // [1, vocab]
        let next = job.sampling.next_token(&logits); // [1, 1]
        let id = next.int64_value(&[0, 0]);
        if info.stop_ids.contains(&id) {
            finish_reason = "stop";
            break;
        }
        generated.push(id as u32);
        idx = Tensor::cat(&[&idx, &next], 1); // [1, num_tokens + 1]
        text = match info.tokenizer.decode(&generated) {
            Ok(t) => t,
            Err(e) => {
                send(Event::Failed(format!("decoding the generated tokens: {e}")));
                return Outcome::Failed(generated.len() as i64);
            }
        };
        let upto = match scan_stop_sequences(&text, &job.stop) {
            StopScan::Stop(at) => {
                cut = Some(at);
                at
            }
            StopScan::Emit(upto) => upto,
        };
        if upto > sent {
            if let Some(delta) = text.get(sent..upto) {
                if !send(Event::Delta(delta.to_string())) {
                    return Outcome::Cancelled(generated.len() as i64);
                }
                sent = upto;
            }
        }
        if cut.is_some() {
            finish_reason = "stop";
            break;
        }
        if job.events.is_closed() {
            return Outcome::Cancelled(generated.len() as i64);
        }
        if !token_delay.is_zero() {
            std::thread::sleep(token_delay);
        }
    }
    // What was held back (a possible start of a stop sequence) is final now.
    let end = cut.unwrap_or(text.len());
    if end > sent {
        if let Some(rest) = text.get(sent..end) {
            send(Event::Delta(rest.to_string()));
        }
    }
    let n = generated.len() as i64;
    if send(Event::Done { finish_reason, completion_tokens: n }) {
        Outcome::Completed(n)
    } else {
        Outcome::Cancelled(n)
    }
}
