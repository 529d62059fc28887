//! Every word the English notebooks and the library put on a figure has a Chinese translation
//! (issue 18): the Chinese notebooks run the English code, so a label missing from
//! `llm_from_scratch::viz::i18n::ZH` would stay English in them without anyone noticing.
//!
//! The labels are the string literals of the code that builds figures: the arguments of
//! `LinePlot::new`, `.with_series`, `HeatMap::attention`, `.label` and `tr`; the fields `title`,
//! `x_label`, `y_label`, `x_desc`, `y_desc`; the first element of each `(label, value)` of `bars`
//! and `series` (also through `bars: data.iter()...` with `let data = [...]` in the notebook);
//! and the arguments of a notebook's own function that returns a figure. A `format!` template
//! counts with its placeholders written `{}`.

use std::path::{Path, PathBuf};

use llm_from_scratch::viz::i18n::{translate, Lang, SAME_IN_ZH, ZH};

/// A token of Rust source, as far as finding labels needs.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A string literal's value (a `format!` template with its placeholders as `{}`).
    Str(String),
    Word(String),
    Punct(char),
}

/// The tokens of Rust code, without comments; char literals and lifetimes are dropped.
fn tokenize(code: &str) -> Vec<Tok> {
    let c: Vec<char> = code.chars().collect();
    let (mut i, mut toks) = (0, Vec::new());
    while i < c.len() {
        let rest = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        match c[i] {
            ch if ch.is_whitespace() => i += 1,
            '/' if rest(1) == '/' => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if rest(1) == '*' => {
                i += 2;
                while i + 1 < c.len() && !(c[i] == '*' && c[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                while i < c.len() && c[i] != '"' {
                    if c[i] == '\\' {
                        i += 1;
                        match c[i] {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            '\n' => {
                                while i + 1 < c.len() && c[i + 1].is_whitespace() {
                                    i += 1;
                                }
                            }
                            other => s.push(other),
                        }
                    } else {
                        s.push(c[i]);
                    }
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Str(s));
            }
            'r' if rest(1) == '"' || (rest(1) == '#' && (rest(2) == '"' || rest(2) == '#')) => {
                let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
                let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                let start = i + 2 + hashes;
                let body: String = c[start..].iter().collect();
                let end = body.find(&close).expect("a closed raw string");
                toks.push(Tok::Str(body[..end].to_string()));
                i = start + body[..end].chars().count() + close.chars().count();
            }
            '\'' => {
                // A char literal ('x', '\n', '"') or a lifetime ('a): skip either.
                if rest(1) == '\\' {
                    i += 2;
                    while i < c.len() && c[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if rest(2) == '\'' {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            ch if ch.is_alphanumeric() || ch == '_' => {
                let start = i;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '.' && c[start].is_ascii_digit()) {
                    i += 1;
                }
                toks.push(Tok::Word(c[start..i].iter().collect()));
            }
            ch => {
                toks.push(Tok::Punct(ch));
                i += 1;
            }
        }
    }
    // `format!("...")`: the template, placeholders as `{}`.
    for k in 3..toks.len() {
        if toks[k - 3] == Tok::Word("format".into()) && toks[k - 2] == Tok::Punct('!') && toks[k - 1] == Tok::Punct('(') {
            if let Tok::Str(s) = &toks[k] {
                toks[k] = Tok::Str(template(s));
            }
        }
    }
    toks
}

/// A `format!` string with each `{name:spec}` written `{}` and `{{`, `}}` as braces.
fn template(s: &str) -> String {
    let (mut out, mut chars) = (String::new(), s.chars().peekable());
    while let Some(ch) = chars.next() {
        match (ch, chars.peek()) {
            ('{', Some('{')) | ('}', Some('}')) => out.push(chars.next().unwrap()),
            ('{', _) => {
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
                out.push_str("{}");
            }
            _ => out.push(ch),
        }
    }
    out
}

/// The index after the bracket that closes the one at `open`.
fn close(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0i32;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// The end of a field's value starting at `start`: the next `,` or closing bracket at its level.
fn field_end(toks: &[Tok], start: usize) -> usize {
    let mut k = start;
    while k < toks.len() {
        match toks[k] {
            Tok::Punct('(' | '[' | '{') => k = close(toks, k),
            Tok::Punct(',' | ')' | ']' | '}') => return k,
            _ => k += 1,
        }
    }
    k
}

fn strings(toks: &[Tok]) -> Vec<String> {
    toks.iter().filter_map(|t| if let Tok::Str(s) = t { Some(s.clone()) } else { None }).collect()
}

/// The first string of each `( ... )` directly inside the list that opens at `open`.
fn first_of_tuples(toks: &[Tok], open: usize) -> Vec<String> {
    let (end, mut k, mut out) = (close(toks, open), open + 1, Vec::new());
    while k < end {
        if toks[k] == Tok::Punct('(') {
            let tuple_end = close(toks, k);
            out.extend(strings(&toks[k..field_end(toks, k + 1)]).into_iter().take(1));
            k = tuple_end;
        } else {
            k += 1;
        }
    }
    out
}

const FIGURES: [&str; 6] = ["BarChart", "LinePlot", "HeatMap", "LossPlot", "LrSchedulePlot", "DecisionBoundary"];
const LABEL_FIELDS: [&str; 5] = ["title", "x_label", "y_label", "x_desc", "y_desc"];
const LABEL_CALLS: [&str; 3] = ["with_series", "label", "tr"];

/// The labels that `code` puts on figures (see the module doc).
fn labels(code: &str) -> Vec<String> {
    let toks = tokenize(code);
    let word = |k: usize| if let Some(Tok::Word(w)) = toks.get(k) { w.as_str() } else { "" };
    let punct = |k: usize, p: char| toks.get(k) == Some(&Tok::Punct(p));
    // The code's own functions that return a figure: `fn name(...) -> ...BarChart {`.
    let mut helpers = Vec::new();
    for k in 0..toks.len() {
        if word(k) == "fn" {
            let body = (k..toks.len()).find(|&j| punct(j, '{')).unwrap_or(toks.len());
            if (k..body).any(|j| FIGURES.contains(&word(j))) {
                helpers.push(word(k + 1).to_string());
            }
        }
    }
    // The first strings of the tuples of `let name = [(...), ...]` / `vec![...]`.
    let array = |name: &str| -> Vec<String> {
        for k in 0..toks.len() {
            if word(k) == "let" && (word(k + 1) == name || word(k + 1) == "mut" && word(k + 2) == name) {
                let eq = (k..toks.len()).find(|&j| punct(j, '=')).unwrap();
                if let Some(open) = (eq..(eq + 4).min(toks.len())).find(|&j| punct(j, '[')) {
                    return first_of_tuples(&toks, open);
                }
            }
        }
        Vec::new()
    };
    let mut out = Vec::new();
    for k in 0..toks.len() {
        let call = punct(k + 1, '(') && word(k.wrapping_sub(1)) != "fn";
        if call && (word(k) == "new" && word(k.wrapping_sub(3)) == "LinePlot" || word(k) == "attention" && word(k.wrapping_sub(3)) == "HeatMap") {
            out.extend(strings(&toks[k + 1..close(&toks, k + 1)]));
        } else if call && LABEL_CALLS.contains(&word(k)) && (punct(k.wrapping_sub(1), '.') || word(k) == "tr") {
            out.extend(strings(&toks[k + 1..close(&toks, k + 1)]));
        } else if call && helpers.iter().any(|h| h == word(k)) {
            out.extend(strings(&toks[k + 1..close(&toks, k + 1)]));
        } else if punct(k + 1, ':') && !punct(k + 2, ':') && !punct(k.wrapping_sub(1), ':') {
            let value = k + 2;
            if LABEL_FIELDS.contains(&word(k)) {
                out.extend(strings(&toks[value..field_end(&toks, value)]));
            } else if word(k) == "bars" || word(k) == "series" {
                if word(value) == "vec" && punct(value + 1, '!') {
                    out.extend(first_of_tuples(&toks, value + 2));
                } else if punct(value + 1, '.') {
                    out.extend(array(word(value)));
                }
            }
        }
    }
    out
}

/// The code of a notebook's code cells, one after the other.
fn notebook_code(path: &Path) -> String {
    let nb: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cells = nb["cells"].as_array().unwrap_or_else(|| panic!("{}: no cells", path.display()));
    let source = |c: &serde_json::Value| match &c["source"] {
        serde_json::Value::Array(lines) => lines.iter().map(|l| l.as_str().unwrap()).collect::<String>(),
        other => other.as_str().unwrap_or_default().to_string(),
    };
    cells.iter().filter(|c| c["cell_type"] == "code").map(source).collect::<Vec<_>>().join("\n")
}

/// The labels of `labels` that are neither in the table nor kept as they are.
fn untranslated(labels: &[String]) -> Vec<String> {
    labels.iter().filter(|l| !ZH.iter().any(|(en, _)| en == l) && !SAME_IN_ZH.contains(&l.as_str())).cloned().collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn finds_the_labels_of_figure_code() {
    let code = r#"
        fn temperature_chart(t: f64, caption: &str) -> plot::BarChart {
            plot::BarChart { title: format!("Temperature {t:.1}: {caption}"), y_label: "Probability".into(), bars: vec![("a".into(), 1.0)], log_y: false }
        }
        temperature_chart(1.0, "flatter"); // "a comment"
        let schemes = [("UTF-8 bytes", 256, n), ("GPT-2 BPE", 50257, m)];
        BarChart { title: "T".into(), y_label: r"tokens".into(), bars: schemes.iter().map(|(n, _, t)| (n.to_string(), *t as f64)).collect(), log_y: false }
        LinePlot::new(&format!("Time, {name}, {{greedy}}"), "x", "y").with_series("GELU", &xs, &ys)?;
        HeatMap::attention("Causal", &w, &WORDS)?;
        println!("not a label: {}", '"');
        LossPlot { series: vec![("Training loss".into(), v)], ..x }.label(tr("lr"))
    "#;
    let found = labels(code);
    let want = [
        "Temperature {}: {}", "Probability", "a", "flatter", "T", "tokens", "UTF-8 bytes", "GPT-2 BPE", "Time, {}, {greedy}", "x", "y", "GELU", "Causal",
        "Training loss", "lr",
    ];
    let mut sorted_found = found.clone();
    sorted_found.sort();
    sorted_found.dedup();
    let mut sorted_want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    sorted_want.sort();
    assert_eq!(sorted_found, sorted_want, "the labels of the sample code");
    // A planted English label without a translation is reported.
    assert_eq!(untranslated(&labels(r#"LinePlot::new("A new untranslated title", "x", "activation")"#)), ["A new untranslated title"]);
}

#[test]
fn every_notebook_figure_label_has_a_chinese_translation() {
    let mut notebooks: Vec<PathBuf> = std::fs::read_dir(root().join("notebooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ipynb"))
        .collect();
    notebooks.sort();
    assert!(notebooks.len() >= 10, "the chapter, appendix and bonus notebooks: {notebooks:?}");
    let (mut all, mut missing) = (Vec::new(), Vec::new());
    for nb in &notebooks {
        let found = labels(&notebook_code(nb));
        missing.extend(untranslated(&found).into_iter().map(|l| format!("{}: {l:?}", nb.file_name().unwrap().to_string_lossy())));
        all.extend(found);
    }
    assert!(missing.is_empty(), "figure labels without a Chinese translation in src/viz/i18n.rs (add them to ZH, or to SAME_IN_ZH if they stay as they are):\n{}", missing.join("\n"));
    // The scan reaches the notebooks' figures (a broken scan would find nothing to check).
    for label in ["GELU and ReLU activation functions", "Temperature {}: {}", "the model's own distribution", "UTF-8 bytes", "CommonCrawl (filtered)", "Causal attention weights", "Linear warmup", "Time to generate n tokens, {}, greedy", "book, no cache"] {
        assert!(all.iter().any(|l| l == label), "the notebooks' label '{label}' was not found by the scan");
    }
    assert!(all.len() >= 50, "only {} labels found in the notebooks (55 on 2026-12-02)", all.len());
}

#[test]
fn every_library_figure_label_has_a_chinese_translation() {
    let mut files = vec![root().join("src")];
    let (mut all, mut missing) = (Vec::new(), Vec::new());
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("viz/i18n.rs") && !path.to_string_lossy().contains("/bin/") {
            let text = std::fs::read_to_string(&path).unwrap();
            // The library's code, without its unit tests (which draw made-up figures).
            let code = text.split("#[cfg(test)]").next().unwrap();
            let found = labels(code);
            missing.extend(untranslated(&found).into_iter().map(|l| format!("{}: {l:?}", path.display())));
            all.extend(found);
        }
    }
    assert!(missing.is_empty(), "library figure labels without a Chinese translation:\n{}", missing.join("\n"));
    for label in ["Training loss", "Validation accuracy", "Epochs", "Tokens seen", "keys", "end of warmup (step {})", "class {}", "Decision boundary"] {
        assert!(all.iter().any(|l| l == label), "the library's label '{label}' was not found by the scan");
    }
}

/// The words of the book's loss plot (figure 5.12) read as a Chinese reader expects.
#[test]
fn the_loss_plot_words_are_the_standard_terms() {
    for (en, zh) in [("Training loss", "训练损失"), ("Validation loss", "验证损失"), ("Epochs", "轮次"), ("Tokens seen", "已见词元数"), ("Accuracy", "准确率"), ("Learning rate", "学习率"), ("Steps", "步数")] {
        assert_eq!(translate(en, Lang::Zh), zh, "'{en}'");
    }
}
