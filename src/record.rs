//! Typed staging rows and rejects. A source record becomes a [`Row`] of [`Field`]s only when
//! every value fits its column's type; otherwise it becomes a [`Reject`] that says where it came
//! from and why, so bad input is kept and counted instead of silently dropped or cast away.

use serde_json::Value;

use crate::schema::{Column, ColumnType, Table, LOAD_ERRORS};

/// One typed value of a staging row.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

pub type Row = Vec<Field>;

/// A source record that could not be staged.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// Which source: `log_data` or `song_data`.
    pub source: &'static str,
    pub file: String,
    /// 1-based line where the record starts; `None` when the whole file failed.
    pub line: Option<u64>,
    pub reason: String,
    /// The start of the raw record text.
    pub raw_text: String,
}

impl Reject {
    /// The reject as one line for people: `file:line: reason`, control characters escaped.
    pub fn one_line(&self) -> String {
        let place = match self.line {
            Some(line) => format!("{}:{line}", self.file),
            None => self.file.clone(),
        };
        escape_controls(&format!("{place}: {}", self.reason))
    }
}

/// The reason `load_errors` gives a file that could not be read.
pub const UNREADABLE_FILE: &str = "unreadable file";

/// How much of a rejected record's text is kept.
pub const RAW_TEXT_CHARS: usize = 200;

/// The first [`RAW_TEXT_CHARS`] characters of raw bytes, invalid UTF-8 replaced and control
/// characters escaped (`\u{0}`), so every engine stores the same text: PostgreSQL's text
/// cannot hold a NUL, and a zero-filled tail of a crash-truncated log is all NULs.
pub fn raw_excerpt(bytes: &[u8]) -> String {
    let cut = bytes.len().min(RAW_TEXT_CHARS * 4);
    escape_controls(
        &String::from_utf8_lossy(&bytes[..cut])
            .chars()
            .take(RAW_TEXT_CHARS)
            .collect::<String>(),
    )
}

/// Whether `c` reorders the text around it when shown: Unicode's bidirectional formatting
/// characters (embeddings, overrides, isolates, and the implicit marks), with which
/// `gnp\u{202e}.exe` reads as `exe.png`
/// (https://www.unicode.org/reports/tr9/#Explicit_Directional_Formatting_Characters).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` must not reach a terminal or a report as it is.
fn is_hidden(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// `text` with every control character (line breaks, tabs, escape, NUL...) and every
/// bidirectional formatting character written as `\u{..}`, for text that reaches a terminal, a
/// report or a column that must not hold them.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(is_hidden) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

impl Reject {
    /// The reject as a row of `load_errors`, each text with its control characters escaped and
    /// cut to its column's width.
    pub fn to_row(&self) -> Row {
        let text = |index: usize, value: &str| {
            let width = match LOAD_ERRORS.columns[index].ty {
                ColumnType::Text(width) => width as usize,
                _ => unreachable!("load_errors column {index} holds text"),
            };
            // Control characters escaped whatever the engine that found the reject (raw text
            // read back from Redshift too), so every engine stores the same row.
            Field::Text(cut_to_bytes(&escape_controls(value), width).to_string())
        };
        vec![
            text(0, self.source),
            text(1, &self.file),
            self.line.map_or(Field::Null, |l| Field::Int(l as i64)),
            text(3, &self.reason),
            text(4, &self.raw_text),
        ]
    }
}

/// The longest start of `text` of at most `bytes` bytes that ends on a character boundary.
pub fn cut_to_bytes(text: &str, bytes: usize) -> &str {
    if text.len() <= bytes {
        return text;
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Types one JSON value for a column. `None`/`null` is NULL; an empty string is NULL for
/// numeric columns (as `userId: ""` for logged-out traffic). The error says what was wrong,
/// without the column name, which the caller adds.
pub fn type_value(value: Option<Value>, column: &Column) -> Result<Field, String> {
    let field = match value {
        None | Some(Value::Null) => Field::Null,
        Some(value) => match column.ty {
            ColumnType::Text(width) => {
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                if text.contains('\0') {
                    return Err(
                        "holds a NUL character (\\u0000), which PostgreSQL and Redshift \
                                cannot store in text"
                            .to_string(),
                    );
                }
                if text.len() > width as usize {
                    return Err(format!(
                        "is {} bytes long, more than the column's width of {width} bytes",
                        text.len()
                    ));
                }
                Field::Text(text)
            }
            ColumnType::Integer | ColumnType::BigInt => {
                let field = type_integer(&value, column.ty)?;
                if let (Field::Int(number), Some(range)) = (&field, column.range) {
                    if !(range.min..=range.max).contains(number) {
                        return Err(format!("{number} is outside {}", range.meaning));
                    }
                }
                field
            }
            ColumnType::Double => type_double(&value)?,
            ColumnType::Timestamp => {
                return Err("timestamps are not read from sources".to_string());
            }
        },
    };
    if field == Field::Null && column.required {
        return Err("is missing or null, and the column requires a value".to_string());
    }
    Ok(field)
}

fn type_integer(value: &Value, ty: ColumnType) -> Result<Field, String> {
    let number = match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(i),
            None => n.as_f64().and_then(whole),
        },
        Value::String(s) if s.trim().is_empty() => return Ok(Field::Null),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(whole))
        }
        _ => None,
    };
    let number = number.ok_or_else(|| format!("{} is not a whole number", shown(value)))?;
    let (min, max) = match ty {
        ColumnType::Integer => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    };
    if number < min || number > max {
        return Err(format!("{number} is out of range for a {ty:?} column"));
    }
    Ok(Field::Int(number))
}

/// An integral float as i64, `None` when it has a fraction or does not fit.
fn whole(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64)
}

fn type_double(value: &Value) -> Result<Field, String> {
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.trim().is_empty() => return Ok(Field::Null),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    };
    number
        .map(Field::Float)
        .ok_or_else(|| format!("{} is not a number", shown(value)))
}

/// A value as it appears in an error, cut short.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

/// Types a whole record: `values[i]` belongs to `table.columns[i]`. `labels[i]` names the
/// source of each value in errors (the JSON path or key).
pub fn type_row(table: &Table, values: Vec<Option<Value>>, labels: &[&str]) -> Result<Row, String> {
    table
        .columns
        .iter()
        .zip(values)
        .zip(labels)
        .map(|((column, value), label)| {
            type_value(value, column).map_err(|e| format!("{} ({label}): {e}", column.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::STAGING_EVENTS;
    use serde_json::json;

    fn column(name: &str) -> &'static Column {
        STAGING_EVENTS
            .columns
            .iter()
            .find(|c| c.name == name)
            .unwrap()
    }

    #[test]
    fn user_id_as_string_number_or_empty() {
        let user = column("user_id");
        assert_eq!(type_value(Some(json!("39")), user), Ok(Field::Int(39)));
        assert_eq!(type_value(Some(json!(39)), user), Ok(Field::Int(39)));
        assert_eq!(type_value(Some(json!("")), user), Ok(Field::Null));
        assert_eq!(type_value(None, user), Ok(Field::Null));
        assert!(type_value(Some(json!("abc")), user).is_err());
    }

    #[test]
    fn integers_accept_integral_floats_only() {
        let ts = column("ts");
        assert_eq!(
            type_value(Some(json!(1541903636796.0)), ts),
            Ok(Field::Int(1541903636796))
        );
        let err = type_value(Some(json!("abc")), ts).unwrap_err();
        assert!(err.contains("\"abc\" is not a whole number"), "{err}");
        assert!(type_value(Some(json!(1.5)), ts).is_err());
        assert!(type_value(Some(json!(true)), ts).is_err());
        assert!(type_value(Some(json!(3_000_000_000i64)), column("session_id")).is_err());
    }

    #[test]
    fn required_columns_reject_missing_values() {
        let err = type_value(None, column("ts")).unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn text_keeps_strings_and_renders_other_json() {
        let artist = column("artist");
        assert_eq!(
            type_value(Some(json!("Sigur Rós")), artist),
            Ok(Field::Text("Sigur Rós".into()))
        );
        assert_eq!(
            type_value(Some(json!(12)), artist),
            Ok(Field::Text("12".into()))
        );
    }

    #[test]
    fn doubles_from_numbers_and_numeric_strings() {
        let length = column("length");
        assert_eq!(
            type_value(Some(json!(218.93179)), length),
            Ok(Field::Float(218.93179))
        );
        assert_eq!(
            type_value(Some(json!("1.5")), length),
            Ok(Field::Float(1.5))
        );
        assert!(type_value(Some(json!("NaN")), length).is_err());
        assert!(type_value(Some(json!([1])), length).is_err());
    }

    #[test]
    fn text_longer_than_its_column_in_bytes_is_rejected() {
        let level = column("level"); // 16 bytes
        assert_eq!(
            type_value(Some(json!("p".repeat(16))), level),
            Ok(Field::Text("p".repeat(16)))
        );
        // Eight two-byte characters fit; nine do not, though they are only nine characters.
        assert!(type_value(Some(json!("é".repeat(8))), level).is_ok());
        let err = type_value(Some(json!("é".repeat(9))), level).unwrap_err();
        assert!(
            err.contains("18 bytes long") && err.contains("width of 16"),
            "{err}"
        );
    }

    #[test]
    fn load_error_rows_fit_their_columns() {
        let reject = Reject {
            source: "log_data",
            file: "f".repeat(5000),
            line: Some(1),
            reason: "é".repeat(1000),
            raw_text: String::new(),
        };
        let row = reject.to_row();
        assert_eq!(row[1], Field::Text("f".repeat(2048)));
        assert_eq!(row[3], Field::Text("é".repeat(512)));
        assert_eq!(cut_to_bytes("aé", 2), "a");
    }

    #[test]
    fn nul_in_text_is_rejected_and_raw_text_holds_no_control_character() {
        let err = type_value(Some(json!("a\u{0}b")), column("artist")).unwrap_err();
        assert!(err.contains("NUL"), "{err}");
        assert_eq!(
            raw_excerpt(b"{\"a\x00\x00\tb\x1b[31m"),
            "{\"a\\u{0}\\u{0}\\u{9}b\\u{1b}[31m"
        );
    }

    #[test]
    fn event_times_outside_years_1900_to_9999_are_rejected() {
        let ts = column("ts");
        assert!(type_value(Some(json!(10_000_000_000_000_000i64)), ts)
            .unwrap_err()
            .contains("years 1900"));
        assert!(type_value(Some(json!(-2_208_988_800_001i64)), ts).is_err());
        assert!(type_value(Some(json!(-2_208_988_800_000i64)), ts).is_ok());
        assert!(type_value(Some(json!(253_402_300_799_999i64)), ts).is_ok());
        assert!(type_value(Some(json!(253_402_300_800_000i64)), ts).is_err());
    }

    #[test]
    fn raw_excerpt_is_bounded_and_lossy() {
        let long = "é".repeat(500);
        assert_eq!(raw_excerpt(long.as_bytes()).chars().count(), RAW_TEXT_CHARS);
        assert_eq!(raw_excerpt(b"ab\xffcd"), "ab\u{fffd}cd");
    }

    #[test]
    fn direction_overrides_are_shown_escaped() {
        assert_eq!(escape_controls("gnp\u{202e}.exe"), "gnp\\u{202e}.exe");
        assert_eq!(
            escape_controls("a\u{2066}b\u{200f}"),
            "a\\u{2066}b\\u{200f}"
        );
        assert_eq!(escape_controls("שלום"), "שלום");
    }
}
