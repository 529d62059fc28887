//! Delimited text as pandas reads and writes it: the reader behind chapter 6's
//! `pd.read_csv(path, sep="\t", ...)` of the SMS Spam Collection and its `read_csv` of the split
//! files, and the field quoting of `df.to_csv` (Python's `csv` module).

use std::path::Path;

use crate::error::{Error, Result};

/// The records of a delimited text, read as pandas' `read_csv` reads them (the C parser with
/// its defaults: `quotechar='"'`, `doublequote=True`, blank lines skipped): `(line, fields)`,
/// with the 1-based line on which each record starts. `source` names the file in errors.
///
/// A field that *starts* with `"` is quoted: it runs to the next `"` that is not doubled, may
/// hold delimiters and newlines, and what follows that closing quote up to the delimiter is
/// appended as plain text. A `"` inside an unquoted field is an ordinary character. So one
/// message that starts with a quote it never closes swallows the lines after it until a quote
/// does close it (the book's 5572 rows from the SMS file's 5574 lines). Errors: a quoted field
/// still open at the end of the text (pandas' "EOF inside string"), naming the line where it
/// started.
pub fn read_delimited(text: &str, delimiter: char, source: &Path) -> Result<Vec<(usize, Vec<String>)>> {
    #[derive(PartialEq)]
    enum State {
        StartRecord,
        StartField,
        InField,
        InQuoted,
        QuoteInQuoted,
    }
    let mut records = Vec::new();
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut line, mut record_line, mut quote_line) = (1usize, 1usize, 1usize);
    let mut state = State::StartRecord;
    let mut chars = text.chars().peekable();
    while let Some(mut c) = chars.next() {
        if c == '\r' {
            // "\r\n" and a lone "\r" both end a line.
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            c = '\n';
        }
        match state {
            State::StartRecord | State::StartField | State::InField | State::QuoteInQuoted if c == '\n' => {
                if state != State::StartRecord {
                    fields.push(std::mem::take(&mut field));
                    records.push((record_line, std::mem::take(&mut fields)));
                }
                state = State::StartRecord; // a blank line is skipped
            }
            State::StartRecord | State::StartField if c == '"' => {
                quote_line = line;
                state = State::InQuoted;
            }
            State::StartRecord | State::StartField | State::InField | State::QuoteInQuoted if c == delimiter => {
                fields.push(std::mem::take(&mut field));
                state = State::StartField;
            }
            State::StartRecord | State::StartField | State::InField | State::QuoteInQuoted => {
                field.push(c);
                state = State::InField;
            }
            State::InQuoted if c == '"' => state = State::QuoteInQuoted,
            State::InQuoted => field.push(c),
        }
        if state == State::QuoteInQuoted && c == '"' && chars.peek() == Some(&'"') {
            chars.next(); // a doubled quote inside a quoted field is one quote
            field.push('"');
            state = State::InQuoted;
        }
        if c == '\n' {
            line += 1;
            if state == State::StartRecord {
                record_line = line;
            }
        }
    }
    match state {
        State::InQuoted => {
            return Err(Error::Format {
                path: source.into(),
                reason: format!("line {quote_line}: a quoted field opened here is never closed (end of file inside a string)"),
            })
        }
        State::StartRecord => {}
        _ => {
            fields.push(field);
            records.push((record_line, fields));
        }
    }
    Ok(records)
}

/// One CSV field as Python's `csv` module (and so pandas' `to_csv`) writes it: quoted, with
/// quotes doubled, when it holds a comma, a quote or a line break; as it is otherwise.
pub fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, delimiter: char) -> Vec<(usize, Vec<String>)> {
        read_delimited(text, delimiter, Path::new("t.csv")).unwrap()
    }

    #[test]
    fn quoting_follows_pandas() {
        let rows = read("a,\"b, \"\"c\"\"\nd\" tail,e\r\n\nf,\"g\"\rh", ',');
        let want: Vec<(usize, Vec<String>)> = vec![
            (1, vec!["a".into(), "b, \"c\"\nd tail".into(), "e".into()]),
            (4, vec!["f".into(), "g".into()]),
            (5, vec!["h".into()]),
        ];
        assert_eq!(rows, want, "quoted delimiters and newlines, doubled quotes, text after the closing quote, \\r\\n, blank line, lone \\r");
        assert_eq!(read("x \"y\"\tz", '\t'), [(1, vec!["x \"y\"".to_string(), "z".to_string()])], "a quote inside a field is text");
    }

    #[test]
    fn an_open_quote_at_the_end_names_its_line() {
        let err = read_delimited("a,b\nc,\"open\nd,e\n", ',', Path::new("t.csv")).unwrap_err().to_string();
        assert!(err.contains("t.csv") && err.contains("line 2") && err.contains("never closed"), "{err}");
    }

    #[test]
    fn csv_field_quotes_like_python() {
        assert_eq!(csv_field("plain text"), "plain text");
        assert_eq!(csv_field("a, \"b\"\nc"), "\"a, \"\"b\"\"\nc\"");
        let line = format!("{},{}", csv_field("x\"y"), csv_field("1,2"));
        assert_eq!(read(&line, ','), [(1, vec!["x\"y".to_string(), "1,2".to_string()])], "what it writes reads back");
    }
}
