//! The book's exercises that are runs, from the command line on tiny models: `llm finetune-spam
//! --trainable all` (exercise 6.2) and `--token first` (6.3), `llm finetune-instruct
//! --prompt-style phi3` (7.1), `--mask-instructions` (7.2) and `--lora-rank` (7.4). Each test
//! checks that the option changes what it should, and that later commands (`llm classify`,
//! `llm respond`) use the run's choice.

mod common;

use std::path::{Path, PathBuf};

use common::{llm_ok, llm_succeeds};
use llm_from_scratch::ch04::GptConfig;
use llm_from_scratch::ch06::{classify_review_at, load_classifier, TokenPosition};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llm-fs-cli-ex-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A one-step `llm finetune-spam` on the tiny model with `extra` flags; its output folder.
fn spam_run(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["finetune-spam", "--config", "tiny", "--epochs", "1", "--max-steps", "2", "--eval-freq", "100", "--eval-iter", "1"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    llm_succeeds(&args);
    out
}

#[test]
fn finetune_spam_trainable_and_token_position() {
    let dir = temp_dir("spam");
    let cfg = GptConfig::tiny();
    let d = cfg.emb_dim;
    // The classifier: the model with a 2-class head (weight and bias) instead of `out_head`.
    let parameters = cfg.num_parameters() - cfg.vocab_size * d + 2 * d + 2;

    // Exercise 6.2: --trainable last-block (the default) against --trainable all.
    let book = json(&spam_run(&dir, "book", &[]).join("results.json"));
    assert_eq!(book["parameters"].as_i64(), Some(parameters), "{book}");
    assert_eq!(book["trainable_parameters"].as_i64(), Some(cfg.block_parameters() + 2 * d + 2 * d + 2), "the last block, final norm, head: {book}");
    let all_dir = spam_run(&dir, "all", &["--trainable", "all"]);
    let all = json(&all_dir.join("results.json"));
    assert_eq!(all["trainable_parameters"].as_i64(), Some(parameters), "every parameter trains: {all}");
    let trainable: Vec<String> = serde_json::from_value(json(&all_dir.join("checkpoint.json"))["extra"]["trainable"].clone()).unwrap();
    assert!(trainable.contains(&"tok_emb.weight".to_string()) && trainable.contains(&"trf_blocks.0.att.W_query.weight".to_string()), "{trainable:?}");

    // Exercise 6.3: --token first is saved with the classifier, and `llm classify` reads that token.
    let first_dir = spam_run(&dir, "first", &["--token", "first"]);
    let ckpt = json(&first_dir.join("checkpoint.json"));
    assert_eq!(ckpt["extra"]["classifier"]["position"], "first", "{}", ckpt["extra"]);
    assert_eq!(json(&dir.join("book").join("checkpoint.json"))["extra"]["classifier"]["position"], "last");
    let (_vs, model, info) = {
        let _rng = llm_from_scratch::rng_lock();
        load_classifier(&first_dir, tch::Device::Cpu).unwrap()
    };
    assert_eq!(info.position, TokenPosition::First);
    let texts = ["WINNER!! You have won a prize, call now", "Are we still on for dinner tonight?", "WINNER!! Dinner is on me tonight"];
    let f = first_dir.to_str().unwrap();
    let said = llm_ok(&["classify", "--model", f, "--text", texts[0], "--text", texts[1], "--text", texts[2]]);
    let want: Vec<&str> = texts
        .iter()
        .map(|t| classify_review_at(t, &model, common::gpt2(), tch::Device::Cpu, Some(info.max_length), info.pad_token_id, TokenPosition::First).unwrap())
        .collect();
    assert_eq!(said.lines().collect::<Vec<_>>(), want, "llm classify reads the first token");
    assert_eq!(want[0], want[2], "two texts that start with the same token get the same answer from the first token");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `llm finetune-instruct` on the tiny config for `epochs` epochs of one step, stopped after
/// `steps` steps, with `extra` flags: (stdout, stderr).
fn instruct_run(dir: &Path, out: &Path, epochs: &str, steps: &str, extra: &[&str]) -> (String, String) {
    let (data, config) = common::instruct_inputs(dir);
    let mut args = vec![
        "finetune-instruct", "--config", config.to_str().unwrap(), "--data", data.to_str().unwrap(), "--epochs", epochs,
        "--max-steps", steps, "--lr", "1e-2", "--eval-freq", "1", "--eval-iter", "1", "--sample-tokens", "2", "--max-new-tokens", "8",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let output = llm_succeeds(&args);
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The first "Training loss: X" line's X (the loss before finetuning).
fn initial_train_loss(stdout: &str) -> f64 {
    let line = stdout.lines().find_map(|l| l.strip_prefix("Training loss: ")).unwrap_or_else(|| panic!("no training loss:\n{stdout}"));
    line.trim().parse().unwrap()
}

#[test]
fn finetune_instruct_prompt_style_and_masking() {
    let dir = temp_dir("instruct");
    // Exercise 7.1: the Phi-3 prompt style, in the printed answers and the saved run.
    let phi = dir.join("phi3");
    let (stdout, _) = instruct_run(&dir, &phi, "1", "1", &["--prompt-style", "phi3"]);
    assert!(stdout.contains("<|user|>\nTranslate to French.\nThank you\n\nCorrect response:\n>> Merci."), "the Phi-3 prompt:\n{stdout}");
    assert!(!stdout.contains("### Instruction:"), "no Alpaca prompt:\n{stdout}");
    let ckpt = json(&phi.join("checkpoint.json"));
    assert_eq!(ckpt["extra"]["prompt_style"], "phi3", "{}", ckpt["extra"]);
    assert_eq!(ckpt["settings"]["start_context"], "<|user|>\nWhat is the plural of mouse?", "the sample prompt: {}", ckpt["settings"]);
    // `llm respond` asks the model in its own style: the same answer as the run's test response.
    let answered = json(&phi.join("instruction-data-with-response.json"));
    let response = answered[0]["model_response"].as_str().unwrap();
    let p = phi.to_str().unwrap();
    let said = llm_ok(&["respond", "--model", p, "--instruction", "Translate to French.", "--input", "Thank you", "--max-new-tokens", "8"]);
    assert_eq!(said, format!("{response}\n"));

    // Exercise 7.2: --mask-instructions leaves the responses' targets only, so the same model's
    // loss before finetuning is another number; it is saved with the run.
    let (plain_stdout, _) = instruct_run(&dir, &dir.join("plain"), "1", "1", &[]);
    let masked = dir.join("masked");
    let (masked_stdout, _) = instruct_run(&dir, &masked, "1", "1", &["--mask-instructions"]);
    let (plain_loss, masked_loss) = (initial_train_loss(&plain_stdout), initial_train_loss(&masked_stdout));
    assert!((plain_loss - masked_loss).abs() > 1e-3, "masking changes the loss: {plain_loss} vs {masked_loss}");
    assert_eq!(json(&masked.join("checkpoint.json"))["extra"]["mask_instructions"], true);
    assert_eq!(json(&dir.join("plain").join("checkpoint.json"))["extra"]["prompt_style"], "alpaca", "the book's default");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn finetune_instruct_with_lora_trains_only_the_lora_matrices() {
    use llm_from_scratch::appendix_e::{lora_parameters, replace_linear_with_lora};
    use llm_from_scratch::ch04::GptModel;

    let dir = temp_dir("lora");
    let out = dir.join("run");
    // Two epochs of one step, stopped after the first (saved with AdamW's state), then resumed:
    // the resumed run keeps its LoRA layers (only they train) and its Phi-3 prompts.
    let (_, stderr) = instruct_run(&dir, &out, "2", "1", &["--lora-rank", "4", "--lora-alpha", "8", "--prompt-style", "phi3"]);
    let per_block = 4 * lora_parameters(32, 32, 4) + lora_parameters(32, 128, 4) + lora_parameters(128, 32, 4);
    let trainable = 2 * per_block + lora_parameters(32, 50257, 4);
    assert!(stderr.contains(&format!("finetuning {trainable} of ")) && stderr.contains("(LoRA rank 4 alpha 8)"), "{stderr}");
    assert_eq!(json(&out.join("checkpoint.json"))["state"]["steps_done"], 1);
    let o = out.to_str().unwrap();
    let resumed = llm_succeeds(&["finetune-instruct", "--resume", o, "--max-new-tokens", "8"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&resumed.stdout), String::from_utf8_lossy(&resumed.stderr));
    assert!(stderr.contains("resuming") && stderr.contains(&format!("finetuning {trainable} of ")), "{stderr}");
    assert!(stdout.contains("<|user|>\nTranslate to French."), "the run's Phi-3 prompts:\n{stdout}");
    let ckpt = json(&out.join("checkpoint.json"));
    assert_eq!((&ckpt["extra"]["lora"], &ckpt["extra"]["prompt_style"]), (&serde_json::json!([4, 8.0]), &serde_json::json!("phi3")));
    assert_eq!(ckpt["state"]["steps_done"], 2);

    // The start: the command's model (seed 123) and LoRA layers (seeded again with 123).
    let start: Vec<(String, tch::Tensor)> = {
        let _rng = llm_from_scratch::rng_lock();
        let cfg = GptConfig::from_json_file(dir.join("config.json")).unwrap();
        llm_from_scratch::set_seed(123);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let mut model = GptModel::new(&vs.root(), &cfg);
        llm_from_scratch::set_seed(123);
        replace_linear_with_lora(&mut model, &vs, 4, 8.0);
        vs.variables().into_iter().collect()
    };
    let saved: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(out.join("checkpoint.safetensors")).unwrap().into_iter().collect();
    let (mut lora_changed, mut lora_total) = (0, 0);
    for (name, before) in &start {
        let after = saved.get(name).unwrap_or_else(|| panic!("{name} saved"));
        if name.contains(".lora.") {
            lora_total += 1;
            lora_changed += usize::from(!after.equal(before));
        } else {
            assert!(after.equal(before), "{name} must not change with LoRA");
        }
    }
    assert_eq!((lora_changed, lora_total), (26, 26), "every A and B of the 13 layers trains");

    // `llm respond` loads the model with its LoRA layers and answers as the run did.
    let answered = json(&out.join("instruction-data-with-response.json"));
    let response = answered[0]["model_response"].as_str().unwrap();
    let said = llm_ok(&["respond", "--model", o, "--instruction", "Translate to French.", "--input", "Thank you", "--max-new-tokens", "8"]);
    assert_eq!(said, format!("{response}\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}
