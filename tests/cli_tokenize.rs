//! `llm tokenize` and `llm bench tokenize`, run as a learner would run them.

mod common;

use common::{llm, llm_ok as stdout_ok};

#[test]
fn encodes_to_a_json_array_on_one_line() {
    assert_eq!(stdout_ok(&["tokenize", "--text", "Every effort moves you"]), "[6109,3626,6100,345]\n");
}

#[test]
fn decodes_ids_to_text() {
    assert_eq!(stdout_ok(&["tokenize", "--decode", "--ids", "6109,3626,6100,345"]), "Every effort moves you\n");
}

#[test]
fn round_trip_through_the_cli() {
    let text = "Hello, do you like tea? 日本語 🤖 it's   fine\n";
    let ids: Vec<u32> = serde_json::from_str(&stdout_ok(&["tokenize", "--text", text])).unwrap();
    let joined = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    assert_eq!(stdout_ok(&["tokenize", "--decode", "--ids", &joined]), format!("{text}\n"));
}

#[test]
fn special_token_needs_allow_special() {
    let text = "Hello, do you like tea? <|endoftext|> In the sunlit terracesof someunknownPlace.";
    let out = llm(&["tokenize", "--text", text]);
    assert!(!out.status.success(), "<|endoftext|> without --allow-special must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("<|endoftext|>") && stderr.contains("--allow-special"), "{stderr}");
    let file = std::env::temp_dir().join(format!("llm-cli-{}.txt", std::process::id()));
    std::fs::write(&file, text).unwrap();
    let ids = stdout_ok(&["tokenize", "--file", file.to_str().unwrap(), "--allow-special"]);
    std::fs::remove_file(&file).ok();
    assert_eq!(ids, "[15496,11,466,345,588,8887,30,220,50256,554,262,4252,18250,8812,2114,1659,617,34680,27271,13]\n");
}

#[test]
fn simple_tokenizer() {
    let text = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of the palace.";
    assert_eq!(
        stdout_ok(&["tokenize", "--tokenizer", "simple", "--text", text]),
        "[1131,5,355,1126,628,975,10,1130,55,988,956,984,722,988,1131,7]\n"
    );
    assert_eq!(stdout_ok(&["tokenize", "--tokenizer", "simple", "--decode", "--ids", "53,44,149"]), "I HAD always\n");
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = llm(&["tokenize", "--decode", "--ids", "50257"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("50257"));
    let out = llm(&["tokenize"]);
    assert!(!out.status.success(), "neither --text nor --file");
}

#[test]
fn bench_prints_one_json_line() {
    let file = std::env::temp_dir().join(format!("llm-bench-{}.txt", std::process::id()));
    std::fs::write(
        &file,
        "I HAD always thought Jack Gisburn rather a cheap genius--though a good fellow enough. ".repeat(20),
    )
    .unwrap();
    let out = stdout_ok(&["bench", "tokenize", "--file", file.to_str().unwrap(), "--seconds", "0"]);
    std::fs::remove_file(&file).ok();
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["same_ids"], true, "{v}");
    assert_eq!(v["threads"], 1);
    for key in ["llm_from_scratch_mb_per_s", "tiktoken_rs_mb_per_s", "ratio"] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} in {v}");
    }
}
