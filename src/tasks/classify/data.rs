//! Chapter 6.2, "Preparing the dataset": the SMS Spam Collection read as the book's
//! `pd.read_csv` reads it, balanced and split with the book's seeded draws, and written to and
//! read from CSV files.
//!
//! There is no difference from the book here: [`RandomState`] is NumPy's Mersenne Twister, so
//! with seed 123 the ham messages kept and the split are the book's own rows (the longest
//! training text has the book's 120 tokens).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::text::data::{DataStore, SMS_SPAM_COLLECTION};
use crate::util::rng::RandomState;
use crate::util::tabular::{csv_field, read_delimited};

/// The label of a ham (not spam) message: the book's `df["Label"].map({"ham": 0, "spam": 1})`.
pub const HAM: i64 = 0;
/// The label of a spam message.
pub const SPAM: i64 = 1;

/// One labelled text: a row of the book's data frame (`Label`, `Text`), with the label as a
/// class index ([`HAM`] 0, [`SPAM`] 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledText {
    pub label: i64,
    pub text: String,
}

/// Parse the SMS Spam Collection (`label<TAB>text` per message) as the book's
/// `pd.read_csv(path, sep="\t", header=None, names=["Label", "Text"])` does, with the labels
/// mapped to [`HAM`] and [`SPAM`]. `source` names the file in errors.
///
/// Errors name the line: a record without a tab or with more than one, a label other than
/// `ham` or `spam`, a quote never closed.
pub fn parse_sms_spam(text: &str, source: &Path) -> Result<Vec<LabeledText>> {
    read_delimited(text, '\t', source)?
        .into_iter()
        .map(|(line, mut fields)| {
            let bad = |reason: String| Error::Format { path: source.into(), reason: format!("line {line}: {reason}") };
            if fields.len() != 2 {
                return Err(bad(format!("expected `label<TAB>text` (2 fields), found {} field(s)", fields.len())));
            }
            let text = fields.pop().expect("2 fields");
            let label = match fields[0].as_str() {
                "ham" => HAM,
                "spam" => SPAM,
                other => return Err(bad(format!("unknown label {other:?} (expected \"ham\" or \"spam\")"))),
            };
            Ok(LabeledText { label, text })
        })
        .collect()
}

/// The SMS Spam Collection from `store` (the local data folder, the cache, or a download),
/// parsed as the book parses it: 5572 messages, 4825 ham and 747 spam.
pub fn read_sms_spam(store: &DataStore) -> Result<Vec<LabeledText>> {
    let path = store.fetch(&SMS_SPAM_COLLECTION)?;
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    parse_sms_spam(&text, &path)
}

/// `(ham, spam)`: how many texts have each label.
pub fn label_counts(data: &[LabeledText]) -> (usize, usize) {
    let spam = data.iter().filter(|t| t.label == SPAM).count();
    (data.len() - spam, spam)
}

/// pandas' `df.sample(frac=1, random_state=seed)` order of `n` rows (`sample(k)` takes its
/// first `k`). Seeds above `u32::MAX` (which NumPy rejects) use their low 32 bits.
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    RandomState::new(seed as u32).permutation(n)
}

/// Listing 6.2, `create_balanced_dataset`: as many ham messages as there are spam messages,
/// drawn as the book's `df[df["Label"] == "ham"].sample(num_spam, random_state=seed)` draws
/// them, followed by all spam messages: 747 + 747 for the SMS data.
pub fn create_balanced_dataset(data: &[LabeledText], seed: u64) -> Vec<LabeledText> {
    let ham: Vec<&LabeledText> = data.iter().filter(|t| t.label == HAM).collect();
    let spam: Vec<&LabeledText> = data.iter().filter(|t| t.label == SPAM).collect();
    let order = permutation(ham.len(), seed);
    order.iter().take(spam.len()).map(|&i| ham[i]).chain(spam).cloned().collect()
}

/// Listing 6.3, `random_split`: shuffle as `df.sample(frac=1, random_state=seed)` does, then
/// the first `train_frac` of the rows train,
/// the next `validation_frac` validate and the rest test, each size rounded down as the book's
/// `int(len(df) * frac)`: 1045 / 149 / 300 of 1494 with 0.7 and 0.1.
pub fn random_split(
    data: &[LabeledText],
    train_frac: f64,
    validation_frac: f64,
    seed: u64,
) -> (Vec<LabeledText>, Vec<LabeledText>, Vec<LabeledText>) {
    let shuffled: Vec<LabeledText> = permutation(data.len(), seed).into_iter().map(|i| data[i].clone()).collect();
    let train_end = ((data.len() as f64 * train_frac) as usize).min(data.len());
    let validation_end = (train_end + (data.len() as f64 * validation_frac) as usize).min(data.len());
    let test = shuffled[validation_end..].to_vec();
    let validation = shuffled[train_end..validation_end].to_vec();
    let mut train = shuffled;
    train.truncate(train_end);
    (train, validation, test)
}

/// Write `data` as the book's `df.to_csv(path, index=None)` does: a `Label,Text` header, then
/// one `label,text` row per text. Creates the parent folder.
pub fn write_csv(path: impl AsRef<Path>, data: &[LabeledText]) -> Result<()> {
    let path = path.as_ref();
    let mut out = String::from("Label,Text\n");
    for row in data {
        out.push_str(&format!("{},{}\n", row.label, csv_field(&row.text)));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    crate::util::files::write_atomic(path, out.as_bytes())
}

/// Read a CSV file written by [`write_csv`] (or the book's `to_csv`): a `Label,Text` header and
/// `label,text` rows with integer labels. Errors name the file and the line.
pub fn read_csv(path: impl AsRef<Path>) -> Result<Vec<LabeledText>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut records = read_delimited(&text, ',', path)?.into_iter();
    let bad = |line: usize, reason: String| Error::Format { path: path.into(), reason: format!("line {line}: {reason}") };
    match records.next() {
        Some((_, header)) if header == ["Label", "Text"] => {}
        Some((line, header)) => return Err(bad(line, format!("expected the header `Label,Text`, found {header:?}"))),
        None => return Err(bad(1, "empty file: expected the header `Label,Text`".into())),
    }
    records
        .map(|(line, mut fields)| {
            if fields.len() != 2 {
                return Err(bad(line, format!("expected `label,text` (2 fields), found {} field(s)", fields.len())));
            }
            let text = fields.pop().expect("2 fields");
            let label = fields[0].parse().map_err(|_| bad(line, format!("label {:?} is not an integer", fields[0])))?;
            Ok(LabeledText { label, text })
        })
        .collect()
}

/// The three CSV files of section 6.2 in a folder: `train.csv`, `validation.csv`, `test.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamSplits {
    pub train: PathBuf,
    pub validation: PathBuf,
    pub test: PathBuf,
}

impl SpamSplits {
    /// The three file paths in `dir` (the files need not exist).
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        SpamSplits { train: dir.join("train.csv"), validation: dir.join("validation.csv"), test: dir.join("test.csv") }
    }
}

/// Section 6.2 end to end: read the SMS Spam Collection from `store`, balance it, split it
/// 70/10/20 with `seed`, and write `train.csv`, `validation.csv` and `test.csv` into `dir`.
pub fn prepare_spam_splits(store: &DataStore, dir: impl AsRef<Path>, seed: u64) -> Result<SpamSplits> {
    let balanced = create_balanced_dataset(&read_sms_spam(store)?, seed);
    let (train, validation, test) = random_split(&balanced, 0.7, 0.1, seed);
    let splits = SpamSplits::in_dir(dir);
    write_csv(&splits.train, &train)?;
    write_csv(&splits.validation, &validation)?;
    write_csv(&splits.test, &test)?;
    Ok(splits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<LabeledText>> {
        parse_sms_spam(text, Path::new("sms.tsv"))
    }

    #[test]
    fn an_unbalanced_quote_merges_lines_as_pandas_does() {
        let rows = parse("ham\t\"Wait\" she said\nspam\t\"Free entry\nham\tok\" now\nham\tlast\n").unwrap();
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        // A closed quote at the start keeps its text; a quote never closed on its line runs on
        // into the next one up to the quote that closes it.
        assert_eq!(texts, ["Wait she said", "Free entry\nham\tok now", "last"]);
        assert_eq!(rows.iter().map(|r| r.label).collect::<Vec<_>>(), [HAM, SPAM, HAM]);
        let rows = parse("ham\t\"a \"\"b\"\" c\"\nham\tx \"y\"\n\nspam\tz").unwrap();
        assert_eq!(rows[0].text, "a \"b\" c", "doubled quotes inside quotes");
        assert_eq!(rows[1].text, "x \"y\"", "a quote inside an unquoted field is text");
        assert_eq!((rows.len(), rows[2].label), (3, SPAM), "blank line skipped; no final newline");
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let err = parse("ham\tok\nspam no tab here\n").unwrap_err().to_string();
        assert!(err.contains("sms.tsv") && err.contains("line 2") && err.contains("1 field"), "{err}");
        let err = parse("ham\tok\n\nhem\ttypo\n").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("\"hem\""), "{err}");
        let err = parse("ham\tok\nham\t\"never closed\nspam\tx\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("never closed"), "{err}");
        let err = parse("ham\ta\tb\n").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("3 field"), "{err}");
    }

    #[test]
    fn csv_round_trip_quotes_like_python() {
        let dir = std::env::temp_dir().join(format!("llm-fs-csv-{}", std::process::id()));
        let path = dir.join("x.csv");
        let rows = vec![
            LabeledText { label: 0, text: "plain".into() },
            LabeledText { label: 1, text: "a, \"b\"\nc".into() },
        ];
        write_csv(&path, &rows).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "Label,Text\n0,plain\n1,\"a, \"\"b\"\"\nc\"\n");
        assert_eq!(read_csv(&path).unwrap(), rows);
        std::fs::write(&path, "Label,Text\n0,ok\nx,bad\n").unwrap();
        let err = read_csv(&path).unwrap_err().to_string();
        assert!(err.contains("x.csv") && err.contains("line 3") && err.contains("\"x\""), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn balancing_and_splitting_are_deterministic_per_seed() {
        let data: Vec<LabeledText> =
            (0..100).map(|i| LabeledText { label: i64::from(i % 10 == 0), text: format!("m{i}") }).collect();
        let balanced = create_balanced_dataset(&data, 1);
        assert_eq!(label_counts(&balanced), (10, 10));
        assert_eq!(balanced, create_balanced_dataset(&data, 1), "same seed, same rows");
        assert_ne!(balanced, create_balanced_dataset(&data, 2), "another seed, other ham rows");
        let (train, val, test) = random_split(&balanced, 0.7, 0.1, 1);
        assert_eq!((train.len(), val.len(), test.len()), (14, 2, 4));
        let mut all: Vec<String> = train.iter().chain(&val).chain(&test).map(|r| r.text.clone()).collect();
        all.sort();
        let mut want: Vec<String> = balanced.iter().map(|r| r.text.clone()).collect();
        want.sort();
        assert_eq!(all, want, "the split is a partition");
    }
}
