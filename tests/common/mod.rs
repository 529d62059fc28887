//! Helpers shared by the integration tests: the book's data files, read from a local folder,
//! and the reference fixtures that Python scripts in `tests/fixtures/` write under `target/fixtures/`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use llm_from_scratch::data::{self, DataFile, DataStore};
use llm_from_scratch::tokenizer::{BpeTokenizer, Tokenizer};

/// The data store of the tests: `LLM_DATA_DIR` when set (the Makefile and CI set it), else the
/// project's sibling `../shared/data` when it exists, else the environment's cache/download.
pub fn store() -> DataStore {
    let mut store = DataStore::from_env();
    if store.local_dir.is_none() {
        let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
        if shared.join("the-verdict.txt").is_file() {
            store.local_dir = Some(shared);
        }
    }
    store
}

/// The path of a data file (panics with the data module's message, which names LLM_DATA_DIR).
pub fn path(file: &DataFile) -> PathBuf {
    store().fetch(file).unwrap_or_else(|e| panic!("{e}"))
}

/// The text of a data file.
pub fn text(file: &DataFile) -> String {
    store().read_to_string(file).unwrap_or_else(|e| panic!("{e}"))
}

/// GPT-2's tokenizer, loaded once per test binary.
pub fn gpt2() -> &'static BpeTokenizer {
    static TOKENIZER: OnceLock<BpeTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        BpeTokenizer::from_files(path(&data::GPT2_ENCODER_JSON), path(&data::GPT2_VOCAB_BPE))
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

/// The messages of the SMS Spam Collection (the text after the tab of each line).
pub fn sms_messages() -> Vec<String> {
    text(&data::SMS_SPAM_COLLECTION)
        .lines()
        .map(|line| line.split_once('\t').expect("label<TAB>text").1.to_string())
        .collect()
}

/// The instruction data: (instruction, input, output) of each entry.
pub fn instruction_entries() -> Vec<(String, String, String)> {
    let json: serde_json::Value =
        serde_json::from_str(&text(&data::INSTRUCTION_DATA)).expect("instruction-data.json is JSON");
    json.as_array()
        .expect("a JSON array")
        .iter()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_else(|| panic!("entry without {k}: {e}")).to_string();
            (field("instruction"), field("input"), field("output"))
        })
        .collect()
}

/// Ten instruction entries (8 training, 1 test, 1 validation) and a tiny GPT-2-vocabulary config;
/// returns (data file, config file).
pub fn instruct_inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let entries: Vec<serde_json::Value> = [
        ("What is the capital of France?", "", "The capital of France is Paris."),
        ("Convert the active sentence to passive.", "The chef cooks the meal.", "The meal is cooked by the chef."),
        ("Name a primary color.", "", "Red is a primary color."),
        ("What is the opposite of hot?", "", "The opposite of hot is cold."),
        ("What is 2 plus 2?", "", "2 plus 2 is 4."),
        ("Give a synonym of fast.", "", "A synonym of fast is quick."),
        ("Correct the spelling.", "Recieve", "The correct spelling is Receive."),
        ("Name the largest planet.", "", "Jupiter is the largest planet."),
        ("Translate to French.", "Thank you", "Merci."),
        ("What is the plural of mouse?", "", "The plural of mouse is mice."),
    ]
    .iter()
    .map(|(i, x, o)| serde_json::json!({"instruction": i, "input": x, "output": o}))
    .collect();
    let data = dir.join("data.json");
    std::fs::write(&data, serde_json::to_string_pretty(&entries).unwrap()).unwrap();
    // GPT-2's vocabulary at width 32 (3.2M parameters), so a step takes a fraction of a second.
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"vocab_size": 50257, "context_length": 96, "emb_dim": 32, "n_heads": 2, "n_layers": 2, "drop_rate": 0.0, "qkv_bias": false}"#).unwrap();
    (data, config)
}

/// The project's root folder.
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `python tests/fixtures/<script> <args>`, panicking with its output when it fails.
pub fn run_fixture_script(script: &str, args: &[&str]) {
    let script = manifest_dir().join("tests/fixtures").join(script);
    let out = Command::new("python")
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("could not run `python {}` ({e}); run `source scripts/env.sh` first", script.display()));
    assert!(
        out.status.success(),
        "python {} {args:?} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The folder `target/fixtures/<name>` written by `python tests/fixtures/<script> <args> --out
/// <folder>`. The script runs when `<folder>/<marker>` (the file it writes last) is missing or
/// older than the script, so a fresh clone and an edited script both get a current fixture.
/// One script runs at a time in a test binary, however many tests ask at once.
pub fn fixture(script: &str, args: &[&str], name: &str, marker: &str) -> PathBuf {
    static RUNNING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = manifest_dir().join("target/fixtures").join(name);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let script_time = modified(&manifest_dir().join("tests/fixtures").join(script));
    let stale = match (modified(&dir.join(marker)), script_time) {
        (None, _) => true,
        (Some(made), Some(edited)) => made < edited,
        (Some(_), None) => false,
    };
    if stale {
        let mut all: Vec<&str> = args.to_vec();
        let out = dir.to_str().expect("a UTF-8 path");
        all.extend(["--out", out]);
        run_fixture_script(script, &all);
    }
    dir
}

/// Run the `llm` binary with `args`, reading the data files from the tests' data folder, without
/// backtraces (so error messages read as a user sees them), and with one libtorch thread (the
/// tests run side by side, and their models are tiny).
pub fn llm(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm"));
    cmd.args(args).env_remove("RUST_BACKTRACE").env("OMP_NUM_THREADS", "1");
    if let Some(dir) = store().local_dir {
        cmd.env("LLM_DATA_DIR", dir);
    }
    cmd.output().expect("run llm")
}

/// [`llm`], which must succeed (else the test fails showing both output streams).
pub fn llm_succeeds(args: &[&str]) -> Output {
    let out = llm(args);
    assert!(
        out.status.success(),
        "llm {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The stdout of [`llm_succeeds`].
pub fn llm_ok(args: &[&str]) -> String {
    String::from_utf8_lossy(&llm_succeeds(args).stdout).into_owned()
}

/// The fixture of exercise 5.5 (`tests/fixtures/hf_gpt2_verdict_loss.py`): a small random GPT-2
/// with the full vocabulary and 256 positions saved by `transformers` (`model/`), and the book's
/// train and validation losses of it on the-verdict split 90/10 (`losses.json`).
pub fn hf_gpt2_verdict() -> PathBuf {
    let text = text(&data::THE_VERDICT);
    let (train_text, val_text) = text.split_at((0.9 * text.len() as f64) as usize);
    let ids_json = manifest_dir().join("target/fixtures/hf_gpt2_verdict_ids.json");
    std::fs::create_dir_all(ids_json.parent().unwrap()).unwrap();
    let ids = serde_json::json!({"train": gpt2().encode_text(train_text).unwrap(), "val": gpt2().encode_text(val_text).unwrap()});
    std::fs::write(&ids_json, ids.to_string()).unwrap();
    fixture("hf_gpt2_verdict_loss.py", &["--ids", ids_json.to_str().unwrap()], "hf_gpt2_verdict", "losses.json")
}
