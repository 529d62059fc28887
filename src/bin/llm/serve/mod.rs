//! `llm serve`: an OpenAI-compatible HTTP server for a model of the project (chapter 7: talk to
//! the model you finetuned from a browser or from any OpenAI client), and a chat page at `/`.
//!
//! ```text
//! llm serve --model runs/instruct --port 8000
//! curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \
//!   -d '{"model": "instruct", "messages": [{"role": "user", "content": "Name a primary color."}]}'
//! ```
//!
//! Routes: `GET /v1/models`, `POST /v1/chat/completions`, `POST /v1/completions`,
//! `GET /v1/stats` (the worker's counters), `GET /` (the chat page). Requests wait in a bounded
//! queue (`--queue`; full: 503) for the one worker thread that owns the model and generates
//! with the KV cache; streamed answers are server-sent events, token by token, ending with
//! `data: [DONE]`. Once listening, the server prints one line on stdout:
//! `llm serve: listening on http://HOST:PORT` (with the real port when `--port 0`).

mod api;
mod model;
mod worker;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::Args;
use llm_from_scratch::bonus_kv_cache::Sampling;
use serde_json::json;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::model_source::ModelArgs;
use api::{json_response, parse_request, usage, ApiError, Envelope, Input};
use model::ModelInfo;
use worker::{Event, Job, Stats};

/// The chat page served at `/`.
const CHAT_HTML: &str = include_str!("chat.html");

/// Arguments of `llm serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The model's id in the API (default: the run folder's or weights' name, or the config's).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port, printed in the "listening on" line).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Requests that may wait for the generating worker; more get 503.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// Largest request body, in bytes; a larger one gets 413.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Sleep this long after each generated token (for tests of disconnects and of the queue).
    #[arg(long, default_value_t = 0, hide = true)]
    pub token_delay_ms: u64,
}

/// What every handler shares.
struct App {
    name: String,
    info: Arc<ModelInfo>,
    jobs: SyncSender<Job>,
    stats: Arc<Stats>,
    created: u64,
    next_id: AtomicU64,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Run `llm serve` until the process is stopped.
pub fn run(args: ServeArgs) -> Result<()> {
    let report = llm_from_scratch::device_report();
    eprintln!("{report}");
    let name = args.model_name.clone().unwrap_or_else(|| model::default_name(&args.model));
    let stats = Arc::new(Stats::default());
    // The worker thread loads the model and keeps it: tensors stay on the thread that made them.
    let (jobs, queue) = sync_channel::<Job>(args.queue);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (model_args, worker_stats, delay) = (args.model.clone(), stats.clone(), Duration::from_millis(args.token_delay_ms));
    std::thread::Builder::new().name("llm-serve-worker".into()).spawn(move || {
        // Sampling without a seed continues one generator, seeded from the clock at start.
        llm_from_scratch::set_seed(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
        match model::load(&model_args, report.device) {
            Ok((network, info)) => {
                let info = Arc::new(info);
                let _ = ready_tx.send(Ok(info.clone()));
                worker::run(network, info, queue, worker_stats, report.device, delay);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        }
    })?;
    let info = ready_rx.recv().context("the worker thread ended while loading the model")??;
    eprintln!("llm serve: model '{name}' ({} positions), queue of {}", info.context_length, args.queue);
    let app = Arc::new(App { name, info, jobs, stats, created: now(), next_id: AtomicU64::new(1) });
    let router = Router::new()
        .route("/", get(|| async { Html(CHAT_HTML) }))
        .route("/v1/models", get(models))
        .route("/v1/stats", get(stats_route))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(args.max_body_bytes))
        .with_state(app);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("listening on {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "llm serve: listening on http://{addr}")?;
        stdout.flush()?;
        axum::serve(listener, router).await.context("serving")
    })
}

async fn models(State(app): State<Arc<App>>) -> Response {
    let body = json!({"object": "list", "data": [{"id": app.name, "object": "model", "created": app.created, "owned_by": "llm-from-scratch"}]});
    json_response(StatusCode::OK, &body)
}

async fn stats_route(State(app): State<Arc<App>>) -> Response {
    json_response(StatusCode::OK, &app.stats.to_json())
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", Some("unknown_url"), format!("Invalid URL ({method} {})", uri.path())).into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!("{method} is not allowed on {}", uri.path());
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_request_error", Some("method_not_allowed"), message).into_response()
}

async fn chat_completions(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    answer(app, body, true).await.unwrap_or_else(IntoResponse::into_response)
}

async fn completions(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    answer(app, body, false).await.unwrap_or_else(IntoResponse::into_response)
}

/// Check a request, queue it for the worker, and answer (whole or streamed).
async fn answer(app: Arc<App>, body: Result<Bytes, BytesRejection>, chat: bool) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "request_too_large" } else { "invalid_body" };
        ApiError::new(status, "invalid_request_error", Some(code), format!("{} (the limit is set by --max-body-bytes)", rejection.body_text()))
    })?;
    let request = parse_request(&body, chat)?;
    if request.model != app.name {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{}` does not exist; this server serves `{}`", request.model, app.name),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found"),
        });
    }
    let info = &app.info;
    let (prompt_ids, input_param) = match &request.input {
        Input::Messages(messages) => {
            let text = info.chat_format.prompt(messages).ok_or_else(|| ApiError::invalid("messages", "'messages' must hold a user message", "invalid_value"))?;
            (info.tokenizer.encode_chat(&text), "messages")
        }
        Input::Prompt(text) => (info.tokenizer.encode_raw(text), "prompt"),
    };
    let prompt_ids = prompt_ids.map_err(|e| ApiError::invalid(input_param, format!("the text could not be tokenized: {e:#}"), "invalid_value"))?;
    let (n, context) = (prompt_ids.len() as i64, info.context_length);
    if n == 0 {
        return Err(ApiError::invalid(input_param, "the prompt is empty", "invalid_value"));
    }
    if n >= context {
        let message = format!("This model's maximum context length is {context} tokens; your prompt has {n} tokens, which leaves no room for a response");
        return Err(ApiError::invalid(input_param, message, "context_length_exceeded"));
    }
    let params = &request.params;
    let max_key = "max_tokens";
    let max_tokens = match params.max_tokens {
        Some(m) if n + m > context => {
            let message = format!("{max_key} is {m}, but the prompt has {n} of this model's {context} positions: at most {} tokens fit", context - n);
            return Err(ApiError::invalid(max_key, message, "invalid_value"));
        }
        Some(m) => m,
        None if chat => context - n,
        None => (context - n).min(16), // OpenAI's default for completions
    };
    let (events_tx, events) = unbounded_channel();
    let job = Job {
        prompt_ids,
        max_tokens,
        sampling: Sampling { temperature: params.temperature, top_k: params.top_k, top_p: params.top_p },
        stop: params.stop.clone(),
        seed: params.seed,
        events: events_tx,
    };
    app.stats.queued.fetch_add(1, Ordering::SeqCst);
    if let Err(e) = app.jobs.try_send(job) {
        app.stats.queued.fetch_sub(1, Ordering::SeqCst);
        return Err(match e {
            TrySendError::Full(_) => {
                app.stats.rejected.fetch_add(1, Ordering::SeqCst);
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", Some("queue_full"), "The server is busy: its request queue is full. Retry later.")
            }
            TrySendError::Disconnected(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", None, "the generation worker has stopped"),
        });
    }
    let prefix = if chat { "chatcmpl" } else { "cmpl" };
    let envelope = Envelope { id: format!("{prefix}-{}", app.next_id.fetch_add(1, Ordering::SeqCst)), created: now(), model: app.name.clone(), chat };
    if params.stream {
        return Ok(stream(envelope, events, n, params.include_usage));
    }
    whole(envelope, events, n).await
}

/// Wait for the whole response.
async fn whole(envelope: Envelope, mut events: UnboundedReceiver<Event>, prompt_tokens: i64) -> Result<Response, ApiError> {
    let mut text = String::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Delta(delta) => text.push_str(&delta),
            Event::Done { finish_reason, completion_tokens } => {
                let body = envelope.response(&text, finish_reason, usage(prompt_tokens, completion_tokens));
                return Ok(json_response(StatusCode::OK, &body));
            }
            Event::Failed(message) => return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", None, message)),
        }
    }
    Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", None, "the generation worker stopped before the response was complete"))
}

/// The response as server-sent events: a chunk per piece of text, a last chunk with the finish
/// reason, the usage chunk when asked for, then `[DONE]`. When the client goes away the stream is
/// dropped, and with it the channel the worker sends on: the worker stops at the next token.
fn stream(envelope: Envelope, events: UnboundedReceiver<Event>, prompt_tokens: i64, include_usage: bool) -> Response {
    struct St {
        events: UnboundedReceiver<Event>,
        pending: VecDeque<String>,
        first: bool,
        done: bool,
    }
    let st = St { events, pending: VecDeque::new(), first: true, done: false };
    let chunks = futures_util::stream::unfold(st, move |mut st| {
        let envelope = envelope.clone();
        async move {
            loop {
                if let Some(data) = st.pending.pop_front() {
                    return Some((Ok::<_, Infallible>(SseEvent::default().data(data)), st));
                }
                if st.done {
                    return None;
                }
                match st.events.recv().await {
                    Some(Event::Delta(text)) => {
                        st.pending.push_back(envelope.chunk(Some(&text), st.first, None, include_usage).to_string());
                        st.first = false;
                    }
                    Some(Event::Done { finish_reason, completion_tokens }) => {
                        st.pending.push_back(envelope.chunk(None, st.first, Some(finish_reason), include_usage).to_string());
                        if include_usage {
                            st.pending.push_back(envelope.usage_chunk(usage(prompt_tokens, completion_tokens)).to_string());
                        }
                        st.pending.push_back("[DONE]".into());
                        st.done = true;
                    }
                    Some(Event::Failed(message)) => {
                        st.pending.push_back(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", None, message).body().to_string());
                        st.pending.push_back("[DONE]".into());
                        st.done = true;
                    }
                    None => {
                        let message = "the generation worker stopped before the response was complete";
                        st.pending.push_back(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", None, message).body().to_string());
                        st.done = true;
                    }
                }
            }
        }
    });
    let mut response = Sse::new(chunks).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    response
}
