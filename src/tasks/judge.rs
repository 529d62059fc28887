//! Chapter 7.8, "Evaluating the fine-tuned LLM": a larger model, served by Ollama or by any
//! OpenAI-compatible server, scores each response from 0 to 100 (the book asks Llama 3 8B
//! through Ollama's `/api/chat`).
//!
//! The judge sees the book's prompt ([`judge_prompt`]): the instruction (and input), the
//! reference output and the model's response, and is asked for an integer only. Replies that
//! hold no integer from 0 to 100 are skipped, as the book's `generate_model_scores` skips what
//! `int()` cannot read. A server that cannot be reached is an [`Error::Judge`] that names its
//! URL and says how to start Ollama.
//!
//! For a score that needs no server, see [`crate::tasks::instruct::rouge_l`] and
//! [`crate::tasks::instruct::response_loss`].

use std::time::Duration;

use crate::error::{Error, Result};
use crate::tasks::instruct::{format_input, InstructionEntry};

/// Ollama's chat endpoint on this machine (the book's `url`).
pub const OLLAMA_CHAT_URL: &str = "http://localhost:11434/api/chat";

/// The book's judge model in Ollama.
pub const DEFAULT_JUDGE_MODEL: &str = "llama3";

/// Which chat protocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChatApi {
    /// Ollama's `POST /api/chat`: `{"model", "messages", "options"}`; the answer is one JSON
    /// object, or (when streamed) one per line, each with `message.content`.
    Ollama,
    /// OpenAI's `POST /v1/chat/completions` (also served by vLLM, llama.cpp, LM Studio, ...):
    /// `{"model", "messages", "temperature", "seed"}`; the answer is `choices[0].message.content`.
    OpenAi,
}

impl std::str::FromStr for ChatApi {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ollama" => Ok(ChatApi::Ollama),
            "openai" => Ok(ChatApi::OpenAi),
            _ => Err(Error::InvalidArgument { name: "chat API", reason: format!("'{s}' (known: ollama, openai)") }),
        }
    }
}

/// A judge model behind a chat endpoint (the book's `query_model(prompt, model, url)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Judge {
    pub api: ChatApi,
    /// The full endpoint URL, e.g. `http://localhost:11434/api/chat` or
    /// `http://localhost:8000/v1/chat/completions`.
    pub url: String,
    /// The model's name on the server (`llama3`, `gpt-4o-mini`, ...).
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` when set (OpenAI-compatible servers may need it).
    pub api_key: Option<String>,
    /// Seed and temperature of the judge's sampling: the book's 123 and 0 (deterministic).
    pub seed: u64,
    pub temperature: f64,
    /// Ollama's context window (the book's `num_ctx` 2048).
    pub num_ctx: u32,
    /// How long to wait for one answer, in seconds (a large judge on a CPU is slow).
    pub timeout_s: u64,
}

impl Judge {
    /// A judge served by Ollama at `url` (the book: [`OLLAMA_CHAT_URL`], model `llama3`).
    pub fn ollama(url: &str, model: &str) -> Self {
        Judge::new(ChatApi::Ollama, url, model)
    }

    /// A judge behind an OpenAI-compatible `chat/completions` endpoint.
    pub fn openai(url: &str, model: &str) -> Self {
        Judge::new(ChatApi::OpenAi, url, model)
    }

    /// A judge speaking `api` at `url`, with the book's seed 123, temperature 0 and num_ctx 2048.
    pub fn new(api: ChatApi, url: &str, model: &str) -> Self {
        Judge { api, url: url.into(), model: model.into(), api_key: None, seed: 123, temperature: 0.0, num_ctx: 2048, timeout_s: 600 }
    }

    /// The JSON body of a request with one user message.
    pub fn request_body(&self, prompt: &str) -> serde_json::Value {
        let messages = serde_json::json!([{"role": "user", "content": prompt}]);
        match self.api {
            ChatApi::Ollama => serde_json::json!({
                "model": self.model,
                "messages": messages,
                "stream": false,
                "options": {"seed": self.seed, "temperature": self.temperature, "num_ctx": self.num_ctx},
            }),
            ChatApi::OpenAi => serde_json::json!({
                "model": self.model,
                "messages": messages,
                "temperature": self.temperature,
                "seed": self.seed,
            }),
        }
    }

    /// Section 7.8, `query_model`: send `prompt` as one user message and return the reply's text.
    ///
    /// Errors ([`Error::Judge`], naming the URL): the server cannot be reached (with how to
    /// start Ollama), answers with an HTTP error status, or sends a body that is not the API's JSON.
    pub fn query_model(&self, prompt: &str) -> Result<String> {
        let fail = |reason: String| Error::Judge { url: self.url.clone(), reason };
        // Like the data module: a proxy from the environment, except for this machine.
        let loopback = ["http://127.", "http://localhost", "http://[::1]"].iter().any(|p| self.url.starts_with(p));
        let mut config = ureq::Agent::config_builder();
        if loopback {
            config = config.proxy(None);
        }
        let agent: ureq::Agent = config
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(self.timeout_s.max(1))))
            .http_status_as_error(false)
            .build()
            .into();
        let mut request = agent.post(&self.url).header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = request.send(self.request_body(prompt).to_string()).map_err(|e| {
            let hint = match self.api {
                ChatApi::Ollama => format!(
                    "is Ollama running? Start it with `ollama serve` and get the model with `ollama pull {}`",
                    self.model
                ),
                ChatApi::OpenAi => "is the OpenAI-compatible server running, and is this its chat/completions URL?".into(),
            };
            fail(format!("could not reach the judge ({e}); {hint}"))
        })?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().map_err(|e| fail(format!("reading the answer: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(fail(format!("HTTP {status}: {}", body.chars().take(500).collect::<String>())));
        }
        parse_chat_reply(self.api, &body).map_err(fail)
    }

    /// The judge's score of `entry.model_response` (0-100), or `None` when its reply holds no
    /// such integer. An entry without a response is an error.
    pub fn score_response(&self, entry: &InstructionEntry) -> Result<Option<u8>> {
        let prompt = judge_prompt(entry)?;
        Ok(parse_score(&self.query_model(&prompt)?))
    }

    /// Section 7.8, `generate_model_scores`: the score of every entry (`None` where the reply
    /// held no score); `on_entry(i, score)` is called after each (for a progress bar).
    pub fn generate_model_scores(
        &self,
        entries: &[InstructionEntry],
        on_entry: &mut dyn FnMut(usize, Option<u8>),
    ) -> Result<Vec<Option<u8>>> {
        let mut scores = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let score = self.score_response(entry)?;
            on_entry(i, score);
            scores.push(score);
        }
        Ok(scores)
    }
}

/// The text of a chat reply: Ollama's `message.content` (of each line, when streamed, joined),
/// or OpenAI's `choices[0].message.content`. An `error` field in the reply is an error.
pub fn parse_chat_reply(api: ChatApi, body: &str) -> std::result::Result<String, String> {
    let parse = |line: &str| -> std::result::Result<serde_json::Value, String> {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("the answer is not JSON ({e}): {line}"))?;
        if let Some(err) = v.get("error") {
            return Err(format!("the server answered with an error: {err}"));
        }
        Ok(v)
    };
    match api {
        ChatApi::Ollama => {
            let mut text = String::new();
            for line in body.lines().filter(|l| !l.trim().is_empty()) {
                let v = parse(line)?;
                let content = v["message"]["content"].as_str().ok_or_else(|| format!("no message.content in the answer: {line}"))?;
                text.push_str(content);
            }
            Ok(text)
        }
        ChatApi::OpenAi => {
            let v = parse(body.trim())?;
            v["choices"][0]["message"]["content"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("no choices[0].message.content in the answer: {body}"))
        }
    }
}

/// The book's judge prompt for an entry with a `model_response`:
/// ``Given the input `{format_input(entry)}` and correct output `{output}`, score the model
/// response `{model_response}` on a scale from 0 to 100, where 100 is the best score. Respond
/// with the integer number only.``
pub fn judge_prompt(entry: &InstructionEntry) -> Result<String> {
    let response = entry.model_response.as_deref().ok_or_else(|| Error::InvalidArgument {
        name: "entry",
        reason: format!("the entry for instruction {:?} has no model_response to score", entry.instruction),
    })?;
    Ok(format!(
        "Given the input `{}` and correct output `{}`, score the model response `{response}` on a scale from 0 to 100, \
         where 100 is the best score. Respond with the integer number only.",
        format_input(entry),
        entry.output
    ))
}

/// The score in a judge's reply: the first integer in it, when it is at most 100 (the book's
/// `int(score)`, a little more forgiving: "Score: 85." gives 85). `None` otherwise.
pub fn parse_score(reply: &str) -> Option<u8> {
    let start = reply.find(|c: char| c.is_ascii_digit())?;
    let digits: String = reply[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<u32>().ok().filter(|&s| s <= 100).map(|s| s as u8)
}

/// The average of the scores that were read (the book's `sum(scores)/len(scores)`); `None` when none was.
pub fn average_score(scores: &[Option<u8>]) -> Option<f64> {
    let read: Vec<f64> = scores.iter().flatten().map(|&s| f64::from(s)).collect();
    (!read.is_empty()).then(|| read.iter().sum::<f64>() / read.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_read_like_the_book() {
        assert_eq!(parse_score("85"), Some(85));
        assert_eq!(parse_score(" Score: 100.\n"), Some(100));
        assert_eq!(parse_score("0"), Some(0));
        assert_eq!(parse_score("150"), None, "out of range");
        assert_eq!(parse_score("I cannot score this."), None);
        assert_eq!(average_score(&[Some(80), None, Some(90)]), Some(85.0));
        assert_eq!(average_score(&[None]), None);
    }

    #[test]
    fn replies_of_both_apis_are_parsed() {
        let streamed = "{\"message\":{\"role\":\"assistant\",\"content\":\"8\"},\"done\":false}\n\
                        {\"message\":{\"role\":\"assistant\",\"content\":\"5\"},\"done\":true}\n";
        assert_eq!(parse_chat_reply(ChatApi::Ollama, streamed).unwrap(), "85");
        let openai = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"42"}}]}"#;
        assert_eq!(parse_chat_reply(ChatApi::OpenAi, openai).unwrap(), "42");
        let err = parse_chat_reply(ChatApi::Ollama, r#"{"error":"model 'llama3' not found"}"#).unwrap_err();
        assert!(err.contains("not found"), "{err}");
        assert!(parse_chat_reply(ChatApi::OpenAi, "<html>").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn the_prompt_is_the_books() {
        let mut e = InstructionEntry::new("Rewrite the sentence using a simile.", "The car is very fast.", "The car is as fast as lightning.");
        assert!(judge_prompt(&e).is_err(), "no response to score");
        e.model_response = Some("The car is as fast as a bullet.".into());
        let p = judge_prompt(&e).unwrap();
        assert!(p.starts_with("Given the input `Below is an instruction that describes a task."), "{p}");
        assert!(p.ends_with(
            "### Input:\nThe car is very fast.` and correct output `The car is as fast as lightning.`, score the model response \
             `The car is as fast as a bullet.` on a scale from 0 to 100, where 100 is the best score. Respond with the integer number only."
        ), "{p}");
        let body = Judge::ollama(OLLAMA_CHAT_URL, "llama3").request_body("hi");
        assert_eq!(body["options"], serde_json::json!({"seed": 123, "temperature": 0.0, "num_ctx": 2048}));
        assert_eq!(body["messages"][0], serde_json::json!({"role": "user", "content": "hi"}));
    }
}
