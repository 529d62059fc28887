//! `llm generate --weights DIR` with Llama 3.2 and Qwen3 folders (chapter 5's bonus): the ids of
//! `transformers`' greedy generation, with and without the KV cache, and the prompt through the
//! folder's `tokenizer.json`. The folders are the tiny random models of
//! `tests/fixtures/hf_llama_qwen_tiny.py`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llm_from_scratch::bonus_llama_qwen::{HfTokenizer, Tokenizer};
use tch::Tensor;

mod common;

fn fixture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::fixture("hf_llama_qwen_tiny.py", &[], "hf_llama_qwen_tiny", "io.safetensors"))
}

fn io(name: &str) -> Vec<i64> {
    let tensors = Tensor::read_safetensors(fixture().join("io.safetensors")).unwrap();
    let t = &tensors.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no {name}")).1;
    Vec::<i64>::try_from(t.flatten(0, -1)).unwrap()
}

fn join(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

#[test]
fn greedy_ids_equal_transformers_with_and_without_the_kv_cache() {
    let prompt = join(&io("prompt"));
    for label in ["llama_tied", "qwen3_sharded"] {
        let want = io(&format!("greedy_{label}"));
        let dir = fixture().join(label);
        let args = ["generate", "--weights", dir.to_str().unwrap(), "--prompt-ids", &prompt, "--ids", "--max-new-tokens", "12"];
        for extra in [&[][..], &["--no-kv-cache"][..]] {
            let out = common::llm_ok(&[&args[..], extra].concat());
            let got: Vec<i64> = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out}: {e}"));
            assert_eq!(got, want, "{label} {extra:?}: greedy ids differ from transformers'");
        }
    }
}

#[test]
fn a_text_prompt_goes_through_the_folders_tokenizer() {
    let dir = fixture().join("llama_tied");
    let tok = HfTokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let text = "Every effort moves you";
    let args = ["generate", "--weights", dir.to_str().unwrap(), "--prompt", text, "--max-new-tokens", "5"];
    let ids: Vec<i64> = serde_json::from_str(common::llm_ok(&[&args[..], &["--ids"]].concat()).trim()).unwrap();
    let prompt: Vec<i64> = tok.encode_with_special_tokens(text).unwrap().into_iter().map(i64::from).collect();
    assert_eq!(&ids[..prompt.len()], &prompt[..], "the prompt is encoded with the BOS token, as transformers does");
    assert_eq!(ids.len(), prompt.len() + 5);
    let decoded = tok.decode_ids(&ids.iter().map(|&i| i as u32).collect::<Vec<_>>()).unwrap();
    assert_eq!(common::llm_ok(&args).trim_end_matches('\n'), decoded, "the text output decodes the same ids");
}

#[test]
fn an_unknown_model_type_is_an_error_naming_the_file_and_key() {
    let dir = std::env::temp_dir().join(format!("llm-fs-cli-hf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"model_type": "mamba"}"#).unwrap();
    let out = common::llm(&["generate", "--weights", dir.to_str().unwrap(), "--prompt-ids", "1,2", "--ids"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success() && err.contains("config.json") && err.contains("'model_type'") && err.contains("mamba"), "{err}");
}
