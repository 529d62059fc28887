//! The figures `llm` writes in Chinese (issue 18): `--lang zh`, the `LLM_LANG` variable and a
//! `.llm-lang` file each give `llm pretrain` a loss plot with Chinese words, drawn in SVG with CJK
//! font names and in PNG with the compiled-in CJK font; English stays the default.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use llm_from_scratch::viz::plot::{CJK_FONT, FONT};

/// `llm pretrain` for one step of the tiny model on `text`, writing to `out`, started in `cwd`
/// with `LLM_LANG` set to `lang_var` (else unset) and the further arguments `args`.
fn pretrain(text: &Path, out: &Path, cwd: &Path, lang_var: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm"));
    cmd.args(["pretrain", "--data", text.to_str().unwrap(), "--config", "tiny", "--context-length", "16", "--batch-size", "8"])
        .args(["--eval-freq", "1", "--eval-iter", "1", "--epochs", "1", "--max-steps", "1", "--out", out.to_str().unwrap()])
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .env_remove("LLM_LANG")
        .env("OMP_NUM_THREADS", "1");
    if let Some(dir) = common::store().local_dir {
        cmd.env("LLM_DATA_DIR", dir);
    }
    if let Some(lang) = lang_var {
        cmd.env("LLM_LANG", lang);
    }
    cmd.output().expect("run llm")
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

#[test]
fn pretrain_writes_loss_plots_in_the_chosen_language() {
    let root = std::env::temp_dir().join(format!("llm-fs-cli-zh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (plain, marked) = (root.join("plain"), root.join("marked"));
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::create_dir_all(&marked).unwrap();
    std::fs::write(marked.join(".llm-lang"), "zh\n").unwrap();
    let text = root.join("text.txt");
    std::fs::write(&text, &common::text(&llm_from_scratch::data::THE_VERDICT)[..3000]).unwrap();
    let run = |name: &str, cwd: &Path, lang_var: Option<&str>, args: &[&str]| -> (PathBuf, Output) {
        let out = root.join(name);
        let output = pretrain(&text, &out, cwd, lang_var, args);
        assert!(output.status.success(), "llm pretrain {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
        (out, output)
    };

    // English by default: the book's words, DejaVu Sans named as sans-serif.
    let (en, _) = run("en", &plain, None, &[]);
    let en_svg = String::from_utf8(read(&en, "loss.svg")).unwrap();
    for word in ["Training loss", "Validation loss", "Epochs", "Tokens seen"] {
        assert!(en_svg.contains(word), "English loss.svg lacks '{word}'");
    }
    assert!(en_svg.is_ascii() && !en_svg.contains(CJK_FONT) && en_svg.contains(&format!("font-family=\"{FONT}\"")), "English loss.svg: no CJK text or font");

    // --lang zh: Chinese words, CJK fonts in the SVG, another picture in the PNG.
    let (zh, _) = run("zh", &plain, None, &["--lang", "zh"]);
    let zh_svg = String::from_utf8(read(&zh, "loss.svg")).unwrap();
    for word in ["训练损失与验证损失", "训练损失", "验证损失", "轮次", "已见词元数", "损失"] {
        assert!(zh_svg.contains(&format!(">\n{word}\n<")), "Chinese loss.svg lacks the text '{word}'");
    }
    assert!(!zh_svg.contains("Training loss") && !zh_svg.contains("font-family=\"sans-serif\""), "Chinese loss.svg keeps English words or fonts");
    assert!(zh_svg.contains(&format!("font-family=\"{CJK_FONT}\"")), "Chinese loss.svg names the CJK fonts");
    let (en_png, zh_png) = (read(&en, "loss.png"), read(&zh, "loss.png"));
    assert_eq!(&zh_png[1..4], b"PNG", "loss.png is a PNG");
    assert_ne!(en_png, zh_png, "the Chinese PNG has other pixels than the English one");

    // The same figure from LLM_LANG=zh_CN, and from a .llm-lang file in the current folder.
    let (var, _) = run("var", &plain, Some("zh_CN"), &[]);
    assert_eq!(String::from_utf8(read(&var, "loss.svg")).unwrap(), zh_svg, "LLM_LANG=zh_CN draws as --lang zh");
    assert_eq!(read(&var, "loss.png"), zh_png, "LLM_LANG=zh_CN draws the PNG as --lang zh");
    let (file, _) = run("file", &marked, None, &[]);
    assert_eq!(String::from_utf8(read(&file, "loss.svg")).unwrap(), zh_svg, ".llm-lang holding zh draws as --lang zh");
    // --lang wins over the file and the variable.
    let (forced, _) = run("forced", &marked, Some("zh"), &["--lang", "en"]);
    assert_eq!(String::from_utf8(read(&forced, "loss.svg")).unwrap(), en_svg, "--lang en wins over LLM_LANG and .llm-lang");

    // An unknown LLM_LANG: a warning that names it, and English figures; an unknown --lang: a
    // usage error.
    let (bad, output) = run("bad", &plain, Some("fr"), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "an unknown LLM_LANG does not stop the run: {stderr}");
    assert!(stderr.contains("LLM_LANG") && stderr.contains("'fr'") && stderr.contains("English"), "the warning names the variable and value: {stderr}");
    assert_eq!(String::from_utf8(read(&bad, "loss.svg")).unwrap(), en_svg, "an unknown LLM_LANG draws in English");
    let output = pretrain(&text, &root.join("bad-flag"), &plain, None, &["--lang", "fr"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "an unknown --lang is a usage error: {stderr}");
    assert!(stderr.contains("--lang") && stderr.contains("en or zh"), "{stderr}");
    std::fs::remove_dir_all(&root).unwrap();
}
