//! The OpenAI API's shapes: errors (`{"error": {"message", "type", "param", "code"}}`), the
//! fields of `chat/completions` and `completions` requests, checked one by one so that an error
//! names the field, and the JSON of responses and stream chunks.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::model::Message;

/// An error answered as OpenAI does: an HTTP status and `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// `invalid_request_error`, `not_found_error`, `server_error`...
    pub kind: &'static str,
    /// The request field at fault.
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    /// A 400 about the field `param`.
    pub fn invalid(param: &str, message: impl Into<String>, code: &'static str) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into(), kind: "invalid_request_error", param: Some(param.into()), code: Some(code) }
    }

    /// An error without a field.
    pub fn new(status: StatusCode, kind: &'static str, code: Option<&'static str>, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), kind, param: None, code }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body())
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The generation settings of a request (OpenAI's names).
#[derive(Debug, Clone, PartialEq)]
pub struct GenParams {
    /// `max_tokens` (or `max_completion_tokens`); `None`: the endpoint's default.
    pub max_tokens: Option<i64>,
    pub temperature: f64,
    pub top_k: Option<i64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    pub stream: bool,
    /// `stream_options.include_usage`: a last chunk with the token counts.
    pub include_usage: bool,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Messages(Vec<Message>),
    Prompt(String),
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub model: String,
    pub input: Input,
    pub params: GenParams,
}

/// A field's value, with JSON null read as absent.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn wrong_type(key: &str, want: &str, got: &Value) -> ApiError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ApiError::invalid(key, format!("'{key}' must be {want}, not {got}"), "invalid_type")
}

fn number(obj: &Map<String, Value>, key: &str, lo: f64, hi: f64) -> Result<Option<f64>, ApiError> {
    let Some(v) = field(obj, key) else { return Ok(None) };
    let x = v.as_f64().ok_or_else(|| wrong_type(key, "a number", v))?;
    if !(lo..=hi).contains(&x) {
        return Err(ApiError::invalid(key, format!("'{key}' is {x}; it must be from {lo} to {hi}"), "invalid_value"));
    }
    Ok(Some(x))
}

fn integer(obj: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    let Some(v) = field(obj, key) else { return Ok(None) };
    v.as_i64().map(Some).ok_or_else(|| wrong_type(key, "an integer", v))
}

fn boolean(obj: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    let Some(v) = field(obj, key) else { return Ok(false) };
    v.as_bool().ok_or_else(|| wrong_type(key, "a boolean", v))
}

/// Text content: a string, or an array of `{"type": "text", "text": ...}` parts (joined).
fn content(v: &Value, key: &str) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(i, p)| p.get("text").and_then(Value::as_str).map(str::to_string).ok_or_else(|| wrong_type(&format!("{key}[{i}].text"), "a string", p.get("text").unwrap_or(&Value::Null))))
            .collect(),
        other => Err(wrong_type(key, "a string or an array of text parts", other)),
    }
}

/// Parse a request body. `chat`: `chat/completions` (needs `messages`) or `completions` (needs
/// `prompt`). Unknown fields are ignored, as by OpenAI's server for fields it does not use here.
pub fn parse_request(body: &[u8], chat: bool) -> Result<Request, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", Some("invalid_json"), format!("the body is not valid JSON: {e}"))
    })?;
    let Value::Object(obj) = value else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", Some("invalid_json"), "the body must be a JSON object"));
    };
    let model = match field(&obj, "model") {
        None => return Err(ApiError::invalid("model", "you must provide a model parameter", "missing_required_parameter")),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(wrong_type("model", "a string", other)),
    };
    let input = if chat {
        let list = match field(&obj, "messages") {
            None => return Err(ApiError::invalid("messages", "'messages' is required", "missing_required_parameter")),
            Some(Value::Array(list)) if list.is_empty() => return Err(ApiError::invalid("messages", "'messages' must not be empty", "invalid_value")),
            Some(Value::Array(list)) => list,
            Some(other) => return Err(wrong_type("messages", "an array", other)),
        };
        let mut messages = Vec::with_capacity(list.len());
        for (i, m) in list.iter().enumerate() {
            let key = format!("messages[{i}]");
            let Value::Object(m) = m else { return Err(wrong_type(&key, "an object", m)) };
            let role = match field(m, "role") {
                Some(Value::String(r)) if ["system", "developer", "user", "assistant", "tool"].contains(&r.as_str()) => r.clone(),
                Some(Value::String(r)) => {
                    return Err(ApiError::invalid(&format!("{key}.role"), format!("unknown role '{r}' (known: system, developer, user, assistant, tool)"), "invalid_value"))
                }
                Some(other) => return Err(wrong_type(&format!("{key}.role"), "a string", other)),
                None => return Err(ApiError::invalid(&format!("{key}.role"), format!("'{key}.role' is required"), "missing_required_parameter")),
            };
            let text = match field(m, "content") {
                Some(v) => content(v, &format!("{key}.content"))?,
                None if role == "assistant" => String::new(),
                None => return Err(ApiError::invalid(&format!("{key}.content"), format!("'{key}.content' is required"), "missing_required_parameter")),
            };
            messages.push(Message { role: if role == "developer" { "system".into() } else { role }, content: text });
        }
        if !messages.iter().any(|m| m.role == "user") {
            return Err(ApiError::invalid("messages", "'messages' must hold a user message", "invalid_value"));
        }
        Input::Messages(messages)
    } else {
        match field(&obj, "prompt") {
            None => return Err(ApiError::invalid("prompt", "'prompt' is required", "missing_required_parameter")),
            Some(Value::String(s)) => Input::Prompt(s.clone()),
            Some(Value::Array(list)) if list.len() == 1 && list[0].is_string() => Input::Prompt(list[0].as_str().unwrap_or_default().into()),
            Some(other) => return Err(wrong_type("prompt", "a string (or an array of one string)", other)),
        }
    };
    let max_key = if chat && field(&obj, "max_completion_tokens").is_some() { "max_completion_tokens" } else { "max_tokens" };
    let max_tokens = integer(&obj, max_key)?;
    if let Some(m) = max_tokens.filter(|&m| m < 1) {
        return Err(ApiError::invalid(max_key, format!("'{max_key}' is {m}; it must be at least 1"), "invalid_value"));
    }
    if let Some(n) = integer(&obj, "n")?.filter(|&n| n != 1) {
        return Err(ApiError::invalid("n", format!("'n' is {n}; this server generates one choice per request (n=1)"), "invalid_value"));
    }
    let top_k = integer(&obj, "top_k")?;
    if let Some(k) = top_k.filter(|&k| k < 1) {
        return Err(ApiError::invalid("top_k", format!("'top_k' is {k}; it must be at least 1"), "invalid_value"));
    }
    let stop = match field(&obj, "stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) if list.len() <= 4 && list.iter().all(Value::is_string) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(other) => return Err(wrong_type("stop", "a string or an array of up to 4 strings", other)),
    };
    let seed = match field(&obj, "seed") {
        None => None,
        Some(v) => Some(v.as_i64().map(|s| s as u64).or_else(|| v.as_u64()).ok_or_else(|| wrong_type("seed", "an integer", v))?),
    };
    let stream = boolean(&obj, "stream")?;
    let include_usage = match field(&obj, "stream_options") {
        None => false,
        Some(Value::Object(o)) => boolean(o, "include_usage").map_err(|e| ApiError { param: Some("stream_options.include_usage".into()), ..e })?,
        Some(other) => return Err(wrong_type("stream_options", "an object", other)),
    };
    let params = GenParams {
        max_tokens,
        temperature: number(&obj, "temperature", 0.0, 2.0)?.unwrap_or(1.0),
        top_k,
        top_p: number(&obj, "top_p", 0.0, 1.0)?,
        stop,
        seed,
        stream,
        include_usage,
    };
    Ok(Request { model, input, params })
}

/// `usage` of a response.
pub fn usage(prompt_tokens: i64, completion_tokens: i64) -> Value {
    json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens})
}

/// The fixed part of every response and chunk of one request.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub chat: bool,
}

impl Envelope {
    fn with(&self, object: &str, choices: Value) -> Value {
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model, "choices": choices})
    }

    /// The whole answer (no streaming).
    pub fn response(&self, text: &str, finish_reason: &str, usage: Value) -> Value {
        let mut v = if self.chat {
            self.with("chat.completion", json!([{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": finish_reason}]))
        } else {
            self.with("text_completion", json!([{"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason}]))
        };
        v["usage"] = usage;
        v
    }

    /// A stream chunk carrying `text` (chat: `delta.content`; the first chunk of a chat also
    /// carries `delta.role`) or, with `finish_reason`, the last choice chunk.
    pub fn chunk(&self, text: Option<&str>, first: bool, finish_reason: Option<&str>, include_usage: bool) -> Value {
        let mut v = if self.chat {
            let mut delta = Map::new();
            if first {
                delta.insert("role".into(), "assistant".into());
            }
            if let Some(t) = text {
                delta.insert("content".into(), t.into());
            }
            self.with("chat.completion.chunk", json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]))
        } else {
            self.with("text_completion", json!([{"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish_reason}]))
        };
        if include_usage {
            v["usage"] = Value::Null;
        }
        v
    }

    /// The usage chunk after the last choice chunk (`stream_options.include_usage`): no choices.
    pub fn usage_chunk(&self, usage: Value) -> Value {
        let mut v = self.with(if self.chat { "chat.completion.chunk" } else { "text_completion" }, json!([]));
        v["usage"] = usage;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str, chat: bool) -> ApiError {
        parse_request(body.as_bytes(), chat).unwrap_err()
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(err("{", true).code, Some("invalid_json"));
        assert_eq!(err(r#"{"messages": []}"#, true).param.as_deref(), Some("model"));
        assert_eq!(err(r#"{"model": "m"}"#, true).param.as_deref(), Some("messages"));
        assert_eq!(err(r#"{"model": "m", "messages": "hi"}"#, true).param.as_deref(), Some("messages"));
        assert_eq!(err(r#"{"model": "m", "messages": [{"role": "user"}]}"#, true).param.as_deref(), Some("messages[0].content"));
        assert_eq!(err(r#"{"model": "m", "messages": [{"role": "user", "content": 5}]}"#, true).param.as_deref(), Some("messages[0].content"));
        assert_eq!(err(r#"{"model": "m", "prompt": "x", "temperature": "hot"}"#, false).param.as_deref(), Some("temperature"));
        assert_eq!(err(r#"{"model": "m", "prompt": "x", "temperature": 3}"#, false).param.as_deref(), Some("temperature"));
        assert_eq!(err(r#"{"model": "m", "prompt": "x", "max_tokens": 0}"#, false).param.as_deref(), Some("max_tokens"));
        assert_eq!(err(r#"{"model": "m", "prompt": "x", "n": 2}"#, false).param.as_deref(), Some("n"));
        assert_eq!(err(r#"{"model": "m", "prompt": "x", "stop": [1]}"#, false).param.as_deref(), Some("stop"));
        assert_eq!(err(r#"{"model": "m", "prompt": "x", "stream": "yes"}"#, false).param.as_deref(), Some("stream"));
    }

    #[test]
    fn good_requests_are_read() {
        let r = parse_request(
            br#"{"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
                "max_tokens": 5, "temperature": 0, "top_p": 0.9, "top_k": 3, "stop": "END", "seed": 7, "n": 1, "stream": true,
                "stream_options": {"include_usage": true}, "frequency_penalty": 0}"#,
            true,
        )
        .unwrap();
        assert_eq!(r.input, Input::Messages(vec![Message { role: "system".into(), content: "s".into() }, Message { role: "user".into(), content: "ab".into() }]));
        let want = GenParams { max_tokens: Some(5), temperature: 0.0, top_k: Some(3), top_p: Some(0.9), stop: vec!["END".into()], seed: Some(7), stream: true, include_usage: true };
        assert_eq!(r.params, want);
        let r = parse_request(br#"{"model": "m", "prompt": ["x"], "stop": null}"#, false).unwrap();
        assert_eq!((r.input, r.params.temperature, r.params.stop.len()), (Input::Prompt("x".into()), 1.0, 0), "OpenAI's default temperature 1; null = absent");
    }
}
