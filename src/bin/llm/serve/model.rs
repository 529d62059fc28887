//! The model `llm serve` answers with: a GPT model of the project (a run folder, OpenAI's GPT-2
//! weights, or a config with random weights) with GPT-2's tokenizer, or a Llama 3.2 / Qwen3
//! Hugging Face folder with its `tokenizer.json`; and how chat messages become its prompt.

use std::path::Path;

use anyhow::{bail, Context, Result};
use llm_from_scratch::bonus_kv_cache::{CachedLm, GptModel};
use llm_from_scratch::bonus_llama_qwen::{DecoderModel, Family, HfDecoder};
use llm_from_scratch::ch02::BpeTokenizer;
use llm_from_scratch::ch07::{InstructionEntry, PromptStyle, PAD_TOKEN_ID};
use llm_from_scratch::tokenizer::{HfTokenizer, Tokenizer};
use tch::{nn::VarStore, Device, Kind};

use crate::generate_hf::decoder_folder;
use crate::model_source::ModelArgs;

/// The network that generates (owned by the worker thread).
pub enum Network {
    Gpt { _vs: VarStore, model: GptModel },
    Decoder { _vs: VarStore, model: DecoderModel },
}

impl Network {
    /// The network as a decoder that runs with the KV cache.
    pub fn cached(&self) -> &dyn CachedLm {
        match self {
            Network::Gpt { model, .. } => model,
            Network::Decoder { model, .. } => model,
        }
    }
}

/// How the messages of a chat request become the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// The project's instruction-finetuned GPT models (chapter 7): the last user message is the
    /// instruction (no input), in the style the model was finetuned with (Alpaca or Phi-3),
    /// followed by the response marker. System messages and earlier turns are left out: the model
    /// saw one instruction per example in training.
    Instruct(PromptStyle),
    /// Llama 3's chat format, written out by hand (the folder's Jinja template is not run):
    /// `<|begin_of_text|>`, then per message `<|start_header_id|>ROLE<|end_header_id|>\n\nTEXT<|eot_id|>`,
    /// then the assistant's header.
    Llama3,
    /// Qwen3's chat format (ChatML), by hand: per message `<|im_start|>ROLE\nTEXT<|im_end|>\n`,
    /// then `<|im_start|>assistant\n`.
    Qwen3,
}

/// One message of a chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl ChatFormat {
    /// The prompt text of `messages`, or `None` when an instruction format finds no user message.
    pub fn prompt(self, messages: &[Message]) -> Option<String> {
        match self {
            ChatFormat::Instruct(style) => {
                let last_user = messages.iter().rev().find(|m| m.role == "user")?;
                let entry = InstructionEntry::new(&last_user.content, "", "");
                Some(style.format_input(&entry) + &style.format_response(""))
            }
            ChatFormat::Llama3 => {
                let mut text = String::from("<|begin_of_text|>");
                for m in messages {
                    text += &format!("<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>", m.role, m.content.trim());
                }
                Some(text + "<|start_header_id|>assistant<|end_header_id|>\n\n")
            }
            ChatFormat::Qwen3 => {
                let mut text = String::new();
                for m in messages {
                    text += &format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content);
                }
                Some(text + "<|im_start|>assistant\n")
            }
        }
    }
}

/// The tokenizer of the served model.
pub enum ServedTokenizer {
    Gpt2(BpeTokenizer),
    Hf(HfTokenizer),
}

impl ServedTokenizer {
    fn as_dyn(&self) -> &dyn Tokenizer {
        match self {
            ServedTokenizer::Gpt2(t) => t,
            ServedTokenizer::Hf(t) => t,
        }
    }

    /// The ids of a chat prompt (its special tokens are written in the text).
    pub fn encode_chat(&self, text: &str) -> Result<Vec<i64>> {
        Ok(self.as_dyn().encode_text(text)?.into_iter().map(i64::from).collect())
    }

    /// The ids of a raw completion prompt: with the special tokens the tokenizer adds itself
    /// (Llama 3's `<|begin_of_text|>`).
    pub fn encode_raw(&self, text: &str) -> Result<Vec<i64>> {
        let ids = match self {
            ServedTokenizer::Gpt2(t) => t.encode_text(text)?,
            ServedTokenizer::Hf(t) => t.encode_with_special_tokens(text)?,
        };
        Ok(ids.into_iter().map(i64::from).collect())
    }

    /// The text of generated ids (a partial UTF-8 character at the end reads as U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self.as_dyn().decode_ids(ids)?)
    }
}

/// What the HTTP side needs to know of the model (shared by every request).
pub struct ModelInfo {
    pub tokenizer: ServedTokenizer,
    pub chat_format: ChatFormat,
    /// Ids that end a response: `<|endoftext|>` for GPT-2, the end-of-turn tokens of a chat model.
    pub stop_ids: Vec<i64>,
    pub context_length: i64,
}

/// Load the model chosen by `args` onto `device`: a Llama or Qwen3 folder through `--weights`,
/// else a GPT model (run folder, GPT-2 weights or --config).
pub fn load(args: &ModelArgs, device: Device) -> Result<(Network, ModelInfo)> {
    if args.is_unset() {
        bail!("give the model to serve: --model RUN_DIR (a run folder), --weights DIR_OR_REPO, or --config for random weights");
    }
    if let Some(dir) = args.weights.as_deref().map(decoder_folder).transpose()?.flatten() {
        let loaded = {
            let _rng = llm_from_scratch::rng_lock();
            HfDecoder::load_dir(&dir, device, Kind::Float).with_context(|| format!("loading {}", dir.display()))?
        };
        let Some(tokenizer) = loaded.tokenizer else {
            bail!("{}: no tokenizer.json (the server needs the model's tokenizer)", dir.display());
        };
        let (chat_format, stops) = match loaded.cfg.family {
            Family::Llama32 => (ChatFormat::Llama3, ["<|eot_id|>", "<|end_of_text|>"]),
            Family::Qwen3 => (ChatFormat::Qwen3, ["<|im_end|>", "<|endoftext|>"]),
        };
        let stop_ids = stops.iter().filter_map(|t| tokenizer.token_to_id(t)).map(i64::from).collect();
        let info = ModelInfo { tokenizer: ServedTokenizer::Hf(tokenizer), chat_format, stop_ids, context_length: loaded.cfg.context_length };
        return Ok((Network::Decoder { _vs: loaded.vs, model: loaded.model }, info));
    }
    let loaded = args.load(device).with_context(|| format!("loading the model {}", args.describe()))?;
    let style = loaded.prompt_style()?;
    let info = ModelInfo {
        tokenizer: ServedTokenizer::Gpt2(BpeTokenizer::gpt2()?),
        chat_format: ChatFormat::Instruct(style),
        stop_ids: vec![PAD_TOKEN_ID],
        context_length: loaded.cfg.context_length,
    };
    Ok((Network::Gpt { _vs: loaded.vs, model: loaded.model }, info))
}

/// The model's name in the API when `--model-name` is not given: the run folder's or weights'
/// last path component, or the config's name.
pub fn default_name(args: &ModelArgs) -> String {
    let last = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string());
    match (&args.run, &args.weights, &args.config) {
        (Some(dir), _, _) => last(dir),
        (None, Some(w), _) => last(Path::new(w.trim_end_matches(".safetensors"))),
        (None, None, Some(c)) => last(Path::new(c.trim_end_matches(".json"))),
        _ => "gpt2-small".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(list: &[(&str, &str)]) -> Vec<Message> {
        list.iter().map(|(r, c)| Message { role: r.to_string(), content: c.to_string() }).collect()
    }

    #[test]
    fn chat_messages_become_each_models_prompt() {
        let m = msgs(&[("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Name a color.")]);
        let alpaca = ChatFormat::Instruct(PromptStyle::Alpaca).prompt(&m).unwrap();
        assert!(alpaca.ends_with("\n\n### Instruction:\nName a color.\n\n### Response:\n") && !alpaca.contains("Be brief"), "{alpaca}");
        let phi3 = ChatFormat::Instruct(PromptStyle::Phi3).prompt(&m).unwrap();
        assert_eq!(phi3, "<|user|>\nName a color.\n<|assistant|>:\n");
        assert_eq!(ChatFormat::Instruct(PromptStyle::Alpaca).prompt(&m[..1]), None, "no user message");
        let qwen = ChatFormat::Qwen3.prompt(&m[..2]).unwrap();
        assert_eq!(qwen, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        let llama = ChatFormat::Llama3.prompt(&m[1..2]).unwrap();
        assert_eq!(llama, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    }
}
