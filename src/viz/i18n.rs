//! The language of the words on figures (the Chinese notebooks, issue 18): titles, axis labels,
//! legends and bar labels are written in English or in Chinese, with the same code.
//!
//! The Chinese notebooks (`notebooks/zh/`) run exactly the code of the English ones, so the
//! language is not chosen in code but found by [`Lang::current`]: the `LLM_LANG` environment
//! variable, else a file `.llm-lang` in the current folder (`notebooks/zh/.llm-lang` holds `zh`,
//! and Jupyter starts a notebook's kernel in the notebook's folder), else English. Code may still
//! choose: [`set_lang`] for the whole program (the CLI's `--lang`), [`with_lang`] for what one
//! closure draws on this thread (tests).
//!
//! Figures keep their English words in their fields (what a notebook built stays inspectable and
//! comparable); they are translated when drawn, by [`translate`] with the table [`ZH`]: every
//! label the library and the English notebooks put on a figure. A label the table does not know
//! is drawn as it is. Entries with `{}` are templates for labels built with `format!`
//! (`"Temperature {}: {}"`), whose holes are translated in turn. Data drawn as text stays as it
//! is: the tokens along a heat map's axes, the numbers. The chapters' diagrams
//! ([`crate::viz::diagrams`]) are fixed SVG files in English. Chinese text needs a font with CJK
//! glyphs: see [`crate::viz::plot::font`].

use std::borrow::Cow;
use std::cell::Cell;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Once;

use crate::error::{Error, Result};

/// The environment variable that chooses the language of figures: `en` or `zh`.
pub const LANG_VAR: &str = "LLM_LANG";
/// The file that chooses the language of figures drawn by a program started in its folder.
pub const LANG_FILE: &str = ".llm-lang";

/// The language of the words drawn on figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English: the words as the code writes them.
    En,
    /// Simplified Chinese: the words translated with [`ZH`], drawn with a CJK font.
    Zh,
}

impl FromStr for Lang {
    type Err = Error;

    /// `en` or `zh`, in any case, optionally with a region or script (`zh_CN`, `zh-CN`,
    /// `zh-Hans`, `en_US`): only the language before `_` or `-` counts.
    fn from_str(s: &str) -> Result<Lang> {
        let language = s.trim().split(['_', '-', '.']).next().unwrap_or_default().to_ascii_lowercase();
        match language.as_str() {
            "en" => Ok(Lang::En),
            "zh" => Ok(Lang::Zh),
            _ => Err(Error::InvalidArgument {
                name: "language",
                reason: format!("'{}' is not a known language (use en or zh)", s.trim()),
            }),
        }
    }
}

/// [`set_lang`]'s choice: 0 none, else `1 + Lang as u8`.
static PROGRAM_LANG: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// [`with_lang`]'s choice on this thread.
    static THREAD_LANG: Cell<Option<Lang>> = const { Cell::new(None) };
}

impl Lang {
    /// The language figures are drawn in now: the one [`with_lang`] set on this thread, else
    /// the one [`set_lang`] set, else [`Lang::from_env_and_dir`] with `LLM_LANG` and the current
    /// folder. A value that is neither `en` nor `zh` (in `LLM_LANG` or in `.llm-lang`) prints a
    /// warning naming it on stderr (once per program) and gives English: a figure in the wrong
    /// language is no reason to stop a training run.
    pub fn current() -> Lang {
        if let Some(lang) = THREAD_LANG.with(Cell::get) {
            return lang;
        }
        match PROGRAM_LANG.load(Ordering::Relaxed) {
            1 => return Lang::En,
            2 => return Lang::Zh,
            _ => {}
        }
        let dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
        Lang::from_env_and_dir(std::env::var(LANG_VAR).ok().as_deref(), &dir).unwrap_or_else(|e| {
            static WARN: Once = Once::new();
            WARN.call_once(|| eprintln!("warning: {e}; figures are drawn in English"));
            Lang::En
        })
    }

    /// The language chosen by the value of `LLM_LANG` (`llm_lang`; unset or empty: not chosen),
    /// else by the file `.llm-lang` in `dir` (its first word), else English. An unknown value is
    /// an error that names the variable or the file.
    pub fn from_env_and_dir(llm_lang: Option<&str>, dir: &Path) -> Result<Lang> {
        if let Some(value) = llm_lang.filter(|v| !v.trim().is_empty()) {
            return value.parse().map_err(|e| Error::Config { what: LANG_VAR.into(), reason: format!("{e}") });
        }
        let file = dir.join(LANG_FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let word = text.split_whitespace().next().unwrap_or_default();
                word.parse().map_err(|e| Error::Config { what: file.display().to_string(), reason: format!("{e}") })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lang::En),
            Err(e) => Err(Error::io(file, e)),
        }
    }

    /// The language's code: `en` or `zh`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

/// Draw the figures of this program in `lang`, whatever `LLM_LANG` or `.llm-lang` say
/// ([`with_lang`] still wins on its thread).
pub fn set_lang(lang: Lang) {
    PROGRAM_LANG.store(1 + lang as u8, Ordering::Relaxed);
}

/// Run `f` with the figures it draws on this thread in `lang`; the previous choice comes back
/// afterwards, even if `f` panics.
pub fn with_lang<R>(lang: Lang, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Lang>);
    impl Drop for Restore {
        fn drop(&mut self) {
            THREAD_LANG.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(THREAD_LANG.with(|l| l.replace(Some(lang))));
    f()
}

/// `text` in the [current](Lang::current) language (see [`translate`]).
pub fn tr(text: &str) -> Cow<'_, str> {
    translate(text, Lang::current())
}

/// `text` in `lang`: itself in English; in Chinese its entry in [`ZH`], or the first template
/// of [`ZH`] it matches with its holes translated in turn, or itself when nothing matches
/// (names such as `GPT-2` stay as they are).
pub fn translate(text: &str, lang: Lang) -> Cow<'_, str> {
    if lang == Lang::En || text.is_empty() {
        return Cow::Borrowed(text);
    }
    if let Some((_, zh)) = ZH.iter().find(|(en, _)| *en == text) {
        return Cow::Borrowed(zh);
    }
    for (en, zh) in ZH.iter().filter(|(en, _)| en.contains("{}")) {
        let parts: Vec<&str> = en.split("{}").collect();
        if let Some(holes) = text.strip_prefix(parts[0]).and_then(|rest| fill_holes(rest, &parts[1..])) {
            let mut out = String::new();
            for (i, piece) in zh.split("{}").enumerate() {
                if i > 0 {
                    out.push_str(&translate(holes[i - 1], lang));
                }
                out.push_str(piece);
            }
            return Cow::Owned(out);
        }
    }
    Cow::Borrowed(text)
}

/// Match `text` against `hole parts[0] hole parts[1] ... hole parts[n-1]` (the template after
/// its first piece): the non-empty holes, each as long as it can be (a hole may contain the
/// separator after it: `"small GPT (4 layers, emb 256)"` before `", "`).
fn fill_holes<'t>(text: &'t str, parts: &[&str]) -> Option<Vec<&'t str>> {
    let (sep, more) = parts.split_first()?;
    if more.is_empty() {
        let hole = text.strip_suffix(sep)?;
        return (!hole.is_empty()).then(|| vec![hole]);
    }
    text.rmatch_indices(sep).filter(|(i, _)| *i > 0).find_map(|(i, _)| {
        let mut holes = fill_holes(&text[i + sep.len()..], more)?;
        holes.insert(0, &text[..i]);
        Some(holes)
    })
}

/// English → simplified Chinese for every word the library and the English notebooks draw on
/// a figure (`tests/viz_i18n.rs` checks that each label in the notebooks' code is here or in
/// [`SAME_IN_ZH`]). `{}` marks a hole of a template (a label built with `format!`).
///
/// The book's terms in their usual Chinese: 词元 token, 轮次 epoch, 损失 loss, 准确率 accuracy.
pub const ZH: &[(&str, &str)] = &[
    // The library's own figures.
    ("Epochs", "轮次"),
    ("Tokens seen", "已见词元数"),
    ("Loss", "损失"),
    ("Accuracy", "准确率"),
    ("Training and validation loss", "训练损失与验证损失"),
    ("Training loss", "训练损失"),
    ("Validation loss", "验证损失"),
    ("Training and validation accuracy", "训练准确率与验证准确率"),
    ("Training accuracy", "训练准确率"),
    ("Validation accuracy", "验证准确率"),
    ("DPO training and validation loss", "DPO 训练损失与验证损失"),
    ("DPO reward margins", "DPO 奖励差值"),
    ("Reward margins", "奖励差值"),
    ("Training reward margins", "训练奖励差值"),
    ("Validation reward margins", "验证奖励差值"),
    ("Training loss (appendix A toy run)", "训练损失（附录 A 的玩具示例）"),
    ("Decision boundary", "决策边界"),
    ("class {}", "类别 {}"),
    ("Learning rate schedule", "学习率调度"),
    ("Steps", "步数"),
    ("Learning rate", "学习率"),
    ("lr", "学习率"),
    ("end of warmup (step {})", "预热结束（第 {} 步）"),
    ("GPT model sizes (parameters, log scale)", "GPT 模型规模（参数量，对数坐标）"),
    ("parameters", "参数量"),
    ("keys", "键"),
    ("queries", "查询"),
    // Chapter 1.
    ("GPT-3 pretraining data (billions of tokens)", "GPT-3 预训练数据（十亿词元）"),
    ("billions of tokens", "十亿词元"),
    ("CommonCrawl (filtered)", "CommonCrawl（过滤后）"),
    // Chapter 2.
    ("Tokens needed for The Verdict", "《The Verdict》所需的词元数"),
    ("tokens", "词元数"),
    ("Tokens per character, chapter 1's summary (not trained on)", "每个字符的词元数：第 1 章小结（不在训练文本中）"),
    ("tokens per character", "每个字符的词元数"),
    ("GPT-2, English", "GPT-2，英文"),
    ("GPT-2, Chinese", "GPT-2，中文"),
    ("Chinese BPE, English", "中文 BPE，英文"),
    ("Chinese BPE, Chinese", "中文 BPE，中文"),
    ("UTF-8 bytes", "UTF-8 字节"),
    ("BPE trained on the story", "在这篇小说上训练的 BPE"),
    ("words and punctuation", "单词与标点"),
    // Chapter 3.
    ("Attention weights (no trainable weights)", "注意力权重（无可训练权重）"),
    ("Causal attention weights", "因果注意力权重"),
    ("MultiHeadAttention, head 2 of 2", "MultiHeadAttention，第 2 个头（共 2 个）"),
    // Chapter 4.
    ("GELU and ReLU activation functions", "GELU 与 ReLU 激活函数"),
    ("activation", "激活值"),
    // Chapter 5.
    ("Temperature {}: {}", "温度 {}：{}"),
    ("Probability", "概率"),
    ("the model's own distribution", "模型自身的分布"),
    ("sharper, almost always the top word", "更尖锐，几乎总是选概率最高的词"),
    ("flatter, every word has a chance", "更平坦，每个词都有机会"),
    // Appendix D.
    ("Linear warmup", "线性预热"),
    ("Linear warmup and cosine decay", "线性预热与余弦衰减"),
    ("Learning rate during training", "训练过程中的学习率"),
    // Bonus: DPO.
    ("DPO loss of one pair", "一对偏好样本的 DPO 损失"),
    ("z = policy log-ratio - reference log-ratio", "z = 策略模型对数比 - 参考模型对数比"),
    // Bonus: from GPT to Llama and Qwen.
    ("Unique parameters of the published models", "已发布模型的独立参数量"),
    ("billions", "十亿"),
    ("RoPE wavelengths of Llama 3.2 1B", "Llama 3.2 1B 的 RoPE 波长"),
    ("feature pair i", "特征对 i"),
    ("log10 wavelength (positions)", "log10 波长（位置数）"),
    ("plain RoPE, base 500,000", "普通 RoPE，基数 500,000"),
    ("with llama3 scaling", "使用 llama3 缩放"),
    // Bonus: the KV cache.
    ("KV cache for a full context of 1024 tokens, fp32", "1024 个词元的完整上下文所需的 KV 缓存（fp32）"),
    ("Time to generate n tokens, {}, greedy", "生成 n 个词元的用时（{}，贪心解码）"),
    ("small GPT (4 layers, emb 256)", "小型 GPT（4 层，嵌入维度 256）"),
    ("tokens generated", "已生成词元数"),
    ("seconds", "秒"),
    ("without KV cache", "不使用 KV 缓存"),
    ("with KV cache", "使用 KV 缓存"),
    (
        "Tokens/s (book: GPT-2 small, 200 tokens, M4; ours: {}, {} tokens, this CPU)",
        "每秒词元数（书中：GPT-2 small，200 个词元，M4；本项目：{}，{} 个词元，本机 CPU）",
    ),
    ("tokens / s", "词元/秒"),
    ("book, no cache", "书中，无缓存"),
    ("book, cache", "书中，有缓存"),
    ("book, optimized", "书中，优化版"),
    ("ours, no cache", "本项目，无缓存"),
    ("ours, cache", "本项目，有缓存"),
];

/// Labels of the English notebooks' figures that stay the same in Chinese: names, symbols and
/// formulas (checked by `tests/viz_i18n.rs` together with [`ZH`]).
pub const SAME_IN_ZH: &[&str] = &[
    "x",
    "GELU",
    "ReLU",
    "MB",
    "GPT-2 BPE",
    "WebText2",
    "Books1",
    "Books2",
    "Wikipedia",
    "gpt2-small",
    "-ln sigmoid(beta z)",
    "beta = 0.1",
    "beta = 0.5",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_language_codes_with_regions() {
        for (text, lang) in [("en", Lang::En), ("zh", Lang::Zh), ("zh_CN", Lang::Zh), ("zh-CN", Lang::Zh), ("ZH", Lang::Zh), (" zh-Hans\n", Lang::Zh), ("en_US.UTF-8", Lang::En)] {
            assert_eq!(text.parse::<Lang>().unwrap(), lang, "'{text}'");
        }
        let err = "fr".parse::<Lang>().unwrap_err().to_string();
        assert!(err.contains("'fr'") && err.contains("en or zh"), "{err}");
    }

    #[test]
    fn the_variable_wins_over_the_file_and_english_is_the_default() {
        let dir = std::env::temp_dir().join(format!("llm-fs-lang-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(LANG_FILE);
        let _ = std::fs::remove_file(&file);
        assert_eq!(Lang::from_env_and_dir(None, &dir).unwrap(), Lang::En, "no variable, no file: English");
        std::fs::write(&file, "zh\n").unwrap();
        assert_eq!(Lang::from_env_and_dir(None, &dir).unwrap(), Lang::Zh, "the file says zh");
        assert_eq!(Lang::from_env_and_dir(Some(""), &dir).unwrap(), Lang::Zh, "an empty variable counts as unset");
        assert_eq!(Lang::from_env_and_dir(Some("en"), &dir).unwrap(), Lang::En, "the variable wins over the file");
        let err = Lang::from_env_and_dir(Some("klingon"), &dir).unwrap_err().to_string();
        assert!(err.contains(LANG_VAR) && err.contains("'klingon'"), "the error names the variable and the value: {err}");
        std::fs::write(&file, "fr").unwrap();
        let err = Lang::from_env_and_dir(None, &dir).unwrap_err().to_string();
        assert!(err.contains(".llm-lang") && err.contains("'fr'"), "the error names the file and the value: {err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn with_lang_overrides_on_this_thread_and_restores() {
        let outer = Lang::current();
        let (inner, nested) = with_lang(Lang::Zh, || (Lang::current(), with_lang(Lang::En, Lang::current)));
        assert_eq!((inner, nested), (Lang::Zh, Lang::En));
        assert_eq!(Lang::current(), outer, "restored after the closure");
        let other = with_lang(Lang::Zh, || std::thread::spawn(|| THREAD_LANG.with(Cell::get)).join().unwrap());
        assert_eq!(other, None, "another thread does not see this thread's choice");
    }

    #[test]
    fn translates_entries_and_templates_and_passes_unknown_text() {
        assert_eq!(translate("Training loss", Lang::Zh), "训练损失");
        assert_eq!(translate("Training loss", Lang::En), "Training loss");
        assert_eq!(translate("GPT-2", Lang::Zh), "GPT-2", "unknown text stays as it is");
        assert_eq!(translate("Temperature 0.1: sharper, almost always the top word", Lang::Zh), "温度 0.1：更尖锐，几乎总是选概率最高的词");
        assert_eq!(translate("end of warmup (step 20)", Lang::Zh), "预热结束（第 20 步）");
        // A hole that holds the template's separator (", ") and is itself translated.
        let title = "Tokens/s (book: GPT-2 small, 200 tokens, M4; ours: small GPT (4 layers, emb 256), 120 tokens, this CPU)";
        assert_eq!(translate(title, Lang::Zh), "每秒词元数（书中：GPT-2 small，200 个词元，M4；本项目：小型 GPT（4 层，嵌入维度 256），120 个词元，本机 CPU）");
        assert_eq!(translate("class ", Lang::Zh), "class ", "a template's hole is never empty");
    }

    #[test]
    fn the_table_is_well_formed() {
        for (i, (en, zh)) in ZH.iter().enumerate() {
            assert_eq!(en.matches("{}").count(), zh.matches("{}").count(), "'{en}' and '{zh}' have as many holes");
            assert!(!en.contains("{}{}"), "'{en}': two holes next to each other cannot be told apart");
            assert!(ZH[..i].iter().all(|(e, _)| e != en), "'{en}' is in the table twice");
            assert!(!SAME_IN_ZH.contains(en), "'{en}' is both translated and kept");
            assert!(zh.chars().any(|c| !c.is_ascii()), "'{en}' → '{zh}' is not translated");
        }
    }
}
