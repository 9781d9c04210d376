//! Turns the bytes of one source file into typed staging rows and rejects. Log files are JSON
//! lines mapped through the JSONPaths file by position; song files hold one or more JSON objects,
//! possibly pretty-printed, mapped to columns by case-insensitive name (Redshift's
//! `JSON 'auto ignorecase'`). Pure functions over bytes, so they run in parallel and are tested
//! without files.

use serde_json::Value;

use crate::jsonpaths::JsonPaths;
use crate::record::{raw_excerpt, type_row, Reject, Row};
use crate::schema::{Table, STAGING_EVENTS, STAGING_SONGS};

/// Which of the two sources a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Log,
    Song,
}

impl SourceKind {
    /// The name used in `load_errors.source` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Log => "log_data",
            SourceKind::Song => "song_data",
        }
    }

    pub fn table(self) -> &'static Table {
        match self {
            SourceKind::Log => &STAGING_EVENTS,
            SourceKind::Song => &STAGING_SONGS,
        }
    }

    /// The largest file of this source a load reads: a song file holds one song (a few hundred
    /// bytes in the Udacity catalogue), so one over [`MAX_SONG_FILE_BYTES`] is refused as
    /// unreadable rather than read; log files are read in pieces, whatever their size.
    pub fn max_file_bytes(self) -> u64 {
        match self {
            SourceKind::Log => u64::MAX,
            SourceKind::Song => MAX_SONG_FILE_BYTES,
        }
    }
}

/// The largest song file a load reads: 64 MiB.
pub const MAX_SONG_FILE_BYTES: u64 = 64 << 20;

/// What one file yielded.
#[derive(Debug, Default)]
pub struct ParsedFile {
    pub rows: Vec<Row>,
    pub rejects: Vec<Reject>,
}

impl ParsedFile {
    /// Records read: every record either staged or rejected.
    pub fn records(&self) -> u64 {
        (self.rows.len() + self.rejects.len()) as u64
    }
}

/// Builds rejects for one file.
struct RejectSink<'a> {
    source: &'static str,
    file: &'a str,
}

impl RejectSink<'_> {
    fn reject(&self, line: u64, reason: String, raw: &[u8]) -> Reject {
        Reject {
            source: self.source,
            file: self.file.to_string(),
            line: Some(line),
            reason,
            raw_text: raw_excerpt(raw),
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads one JSON line into the values of the staging columns, or says what else it was.
enum Line {
    Values(Vec<Option<Value>>),
    NotAnObject(&'static str),
}

/// Reads one log line the way `mapping` says.
fn read_line(line: &[u8], mapping: &JsonPaths, keys: Option<&[&str]>) -> serde_json::Result<Line> {
    match keys {
        Some(keys) => {
            let mut deserializer = serde_json::Deserializer::from_slice(line);
            let top = TopLevel {
                keys,
                ignore_case: false,
            };
            let values = serde::de::DeserializeSeed::deserialize(top, &mut deserializer)?;
            deserializer.end()?;
            Ok(values)
        }
        None => {
            let record: Value = serde_json::from_slice(line)?;
            if !record.is_object() {
                return Ok(Line::NotAnObject(kind_of(&record)));
            }
            Ok(Line::Values(
                mapping
                    .paths
                    .iter()
                    .map(|p| p.select(&record).cloned())
                    .collect(),
            ))
        }
    }
}

/// Parses a JSON-lines log file. Blank lines are skipped; every other line is one record.
pub fn parse_log_file(file: &str, bytes: &[u8], mapping: &JsonPaths) -> ParsedFile {
    let sink = RejectSink {
        source: SourceKind::Log.name(),
        file,
    };
    let labels: Vec<&str> = mapping.paths.iter().map(|p| p.text.as_str()).collect();
    let keys = mapping.top_level_keys();
    let mut parsed = ParsedFile::default();
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = index as u64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reject = |reason| sink.reject(line_no, reason, line);
        match read_line(line, mapping, keys.as_deref()) {
            Err(e) => parsed.rejects.push(reject(format!("not valid JSON: {e}"))),
            Ok(Line::NotAnObject(kind)) => parsed
                .rejects
                .push(reject(format!("a JSON {kind}, not an object"))),
            Ok(Line::Values(values)) => match type_row(&STAGING_EVENTS, values, &labels) {
                Ok(row) => parsed.rows.push(row),
                Err(reason) => parsed.rejects.push(reject(reason)),
            },
        }
    }
    parsed
}

/// Reads a JSON object taking only the members named in `keys` (one per column, in column
/// order), skipping the rest without building them. A member named twice is an error: which
/// of its values the record means cannot be told.
struct TopLevel<'k> {
    keys: &'k [&'k str],
    /// Whether member names match `keys` in any case (song files).
    ignore_case: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for TopLevel<'_> {
    type Value = Line;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Line, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Finds the first column a member name feeds, without allocating the name.
#[derive(Clone, Copy)]
struct ColumnOf<'k> {
    keys: &'k [&'k str],
    ignore_case: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for ColumnOf<'_> {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ColumnOf<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self
            .keys
            .iter()
            .position(|k| *k == key || (self.ignore_case && k.eq_ignore_ascii_case(key))))
    }
}

impl<'de> serde::de::Visitor<'de> for TopLevel<'_> {
    type Value = Line;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Line, A::Error> {
        let mut values: Vec<Option<Value>> = vec![None; self.keys.len()];
        let names = ColumnOf {
            keys: self.keys,
            ignore_case: self.ignore_case,
        };
        while let Some(column) = map.next_key_seed(names)? {
            let Some(first) = column else {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            };
            if values[first].is_some() {
                return Err(serde::de::Error::custom(format_args!(
                    "the member {:?} appears twice (or in two cases), so which value is meant \
                     cannot be told",
                    self.keys[first]
                )));
            }
            let value: Value = map.next_value()?;
            // The same member may feed several columns.
            for (column, key) in self.keys.iter().enumerate().skip(first + 1) {
                if *key == self.keys[first] {
                    values[column] = Some(value.clone());
                }
            }
            values[first] = Some(value);
        }
        Ok(Line::Values(values))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Line, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Line::NotAnObject("array"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Line, E> {
        Ok(Line::NotAnObject("boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Line, E> {
        Ok(Line::NotAnObject("number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Line, E> {
        Ok(Line::NotAnObject("number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Line, E> {
        Ok(Line::NotAnObject("number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Line, E> {
        Ok(Line::NotAnObject("string"))
    }

    fn visit_unit<E>(self) -> Result<Line, E> {
        Ok(Line::NotAnObject("null"))
    }
}

/// Parses a song file: a stream of JSON objects separated by any whitespace. After a syntax
/// error the parser resumes at the next line that starts with `{`, so one broken object is one
/// reject and the objects after it are still read. A file with nothing but whitespace is one
/// reject: a song file is expected to hold a song.
pub fn parse_song_file(file: &str, bytes: &[u8]) -> ParsedFile {
    let sink = RejectSink {
        source: SourceKind::Song.name(),
        file,
    };
    let columns = &STAGING_SONGS.columns;
    let labels: Vec<&str> = columns.iter().map(|c| c.name).collect();
    let mut parsed = ParsedFile::default();
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        parsed
            .rejects
            .push(sink.reject(1, "empty file: no JSON object in it".to_string(), bytes));
        return parsed;
    }
    let mut lines = LineCounter::default();
    // Where the current stream of objects starts; it moves past each syntax error.
    let mut base = 0;
    'stream: loop {
        let slice = &bytes[base..];
        let mut stream = serde_json::Deserializer::from_slice(slice).into_iter::<SongObject>();
        loop {
            let start = base + skip_whitespace(slice, stream.byte_offset());
            let line_no = lines.line_at(bytes, start);
            let Some(item) = stream.next() else {
                break 'stream;
            };
            let raw = &bytes[start..(base + stream.byte_offset()).max(start)];
            let record = match item {
                Ok(SongObject(record)) => record,
                Err(e) => {
                    let resume = next_object_line(bytes, start);
                    parsed.rejects.push(sink.reject(
                        line_no,
                        format!("not valid JSON: {e}"),
                        &bytes[start..resume.unwrap_or(bytes.len())],
                    ));
                    match resume {
                        Some(resume) => {
                            base = resume;
                            continue 'stream;
                        }
                        None => break 'stream,
                    }
                }
            };
            let values = match record {
                Line::Values(values) => values,
                Line::NotAnObject(kind) => {
                    parsed.rejects.push(sink.reject(
                        line_no,
                        format!("a JSON {kind}, not an object"),
                        raw,
                    ));
                    continue;
                }
            };
            match type_row(&STAGING_SONGS, values, &labels) {
                Ok(row) => parsed.rows.push(row),
                Err(reason) => parsed.rejects.push(sink.reject(line_no, reason, raw)),
            }
        }
    }
    parsed
}

/// The staging columns' names, which a song object's members are matched to in any case.
static SONG_KEYS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| STAGING_SONGS.columns.iter().map(|c| c.name).collect());

/// One top-level value of a song file, read as [`TopLevel`] reads a log line: only the members
/// that are staging columns are built, so a huge member or a file of nested arrays takes no
/// more memory than the columns do.
struct SongObject(Line);

impl<'de> serde::Deserialize<'de> for SongObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let top = TopLevel {
            keys: &SONG_KEYS,
            ignore_case: true,
        };
        serde::de::DeserializeSeed::deserialize(top, deserializer).map(SongObject)
    }
}

/// The offset of the first line after `from` that starts with `{`: where the next top-level
/// object of a song file begins, one per line or pretty-printed.
fn next_object_line(bytes: &[u8], from: usize) -> Option<usize> {
    bytes[from..]
        .windows(2)
        .position(|pair| pair == b"\n{")
        .map(|at| from + at + 1)
}

fn skip_whitespace(bytes: &[u8], from: usize) -> usize {
    from + bytes[from..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count()
}

/// Line numbers of byte offsets that only move forward.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    line: u64,
}

impl LineCounter {
    fn line_at(&mut self, bytes: &[u8], offset: usize) -> u64 {
        let offset = offset.min(bytes.len());
        self.line += bytes[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.offset = offset;
        self.line + 1
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Field;

    fn mapping() -> JsonPaths {
        mapping_with_user_path("$['userId']")
    }

    fn mapping_with_user_path(user_path: &str) -> JsonPaths {
        let mut paths: Vec<String> = [
            "artist",
            "auth",
            "firstName",
            "gender",
            "itemInSession",
            "lastName",
            "length",
            "level",
            "location",
            "method",
            "page",
            "registration",
            "sessionId",
            "song",
            "status",
            "ts",
            "userAgent",
            "userId",
        ]
        .iter()
        .map(|k| format!("\"$['{k}']\""))
        .collect();
        paths[17] = format!("\"{user_path}\"");
        let text = format!("{{\"jsonpaths\": [{}]}}", paths.join(","));
        JsonPaths::parse(text.as_bytes(), STAGING_EVENTS.columns.len()).unwrap()
    }

    const EVENT: &str = r#"{"artist":"A","auth":"Logged In","firstName":"J","gender":"M","itemInSession":0,"lastName":"B","length":182.8,"level":"free","location":"X","method":"PUT","page":"NextSong","registration":1540991795796.0,"sessionId":829,"song":"S","status":200,"ts":1543537327796,"userAgent":"UA","userId":"91"}"#;

    #[test]
    fn log_lines_with_blank_lines_and_bad_records() {
        let text = format!(
            "{EVENT}\n\n   \nnot json\n[1,2]\n{}\n{}",
            EVENT.replace("1543537327796", "\"abc\""),
            EVENT.replace("\"91\"", "\"\"")
        );
        let parsed = parse_log_file("f.json", text.as_bytes(), &mapping());
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.records(), 5);
        assert_eq!(parsed.rows[0][17], Field::Int(91));
        assert_eq!(parsed.rows[0][15], Field::Int(1543537327796));
        assert_eq!(parsed.rows[1][17], Field::Null);
        let lines: Vec<_> = parsed.rejects.iter().map(|r| r.line.unwrap()).collect();
        assert_eq!(lines, vec![4, 5, 6]);
        assert!(parsed.rejects[0].reason.starts_with("not valid JSON"));
        assert!(parsed.rejects[1].reason.contains("array, not an object"));
        assert!(
            parsed.rejects[2].reason.starts_with("ts ($['ts'])"),
            "{}",
            parsed.rejects[2].reason
        );
        assert_eq!(parsed.rejects[0].raw_text, "not json");
    }

    #[test]
    fn windows_line_endings_and_a_byte_order_mark() {
        let text = format!("\u{feff}{EVENT}\r\n\r\n{EVENT}\r\n");
        let parsed = parse_log_file("f.json", text.as_bytes(), &mapping());
        assert_eq!(parsed.rows.len(), 2, "{:?}", parsed.rejects);
        assert_eq!(parsed.rows[1][16], Field::Text("UA".into()));
    }

    #[test]
    fn nested_paths_read_the_whole_record() {
        let mapping = mapping_with_user_path("$.user['id']");
        assert!(mapping.top_level_keys().is_none());
        let text = "{\"ts\": 5, \"sessionId\": 1, \"itemInSession\": 2, \"user\": {\"id\": \"7\"}}\n[1]\n\"x\"";
        let parsed = parse_log_file("f.json", text.as_bytes(), &mapping);
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.rows[0][17], Field::Int(7));
        assert_eq!(parsed.rows[0][15], Field::Int(5));
        assert_eq!(parsed.rejects[0].reason, "a JSON array, not an object");
        assert_eq!(parsed.rejects[1].reason, "a JSON string, not an object");
    }

    #[test]
    fn top_level_reader_skips_unknown_members_and_handles_escapes() {
        let text = r#"{"extra": {"deep": [1, {"x": null}]}, "user\u0049d": "8", "ts": 9, "sessionId": 1, "itemInSession": 0, "artist": {"a": 1}} trailing"#;
        let parsed = parse_log_file("f.json", text.as_bytes(), &mapping());
        assert_eq!(parsed.rejects.len(), 1, "trailing characters are not JSON");
        let text = r#"{"extra": {"deep": [1, {"x": null}]}, "user\u0049d": "8", "ts": 9, "sessionId": 1, "itemInSession": 0, "artist": {"a": 1}}"#;
        let parsed = parse_log_file("f.json", text.as_bytes(), &mapping());
        assert_eq!(parsed.rows.len(), 1, "{:?}", parsed.rejects);
        assert_eq!(parsed.rows[0][17], Field::Int(8));
        assert_eq!(parsed.rows[0][0], Field::Text("{\"a\":1}".into()));
    }

    #[test]
    fn song_files_pretty_printed_several_objects_any_key_case() {
        let text = "{\n  \"song_id\": \"S1\",\n  \"ARTIST_ID\": \"A1\",\n  \"duration\": 1.5,\n  \"year\": 0\n}\n\n{\"song_id\":\"S2\",\"artist_id\":\"A2\"}\n{\"song_id\":\"S3\",\"artist_id\":\"A3\",\"year\":\"x\"}\n[]\n{\"song_id\": oops";
        let parsed = parse_song_file("s.json", text.as_bytes());
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0][1], Field::Text("A1".into()));
        assert_eq!(parsed.rows[0][8], Field::Float(1.5));
        let lines: Vec<_> = parsed.rejects.iter().map(|r| r.line.unwrap()).collect();
        assert_eq!(lines, vec![9, 10, 11]);
        assert!(parsed.rejects[0].reason.starts_with("year"));
        assert_eq!(parsed.rejects[1].raw_text, "[]");
        assert_eq!(parsed.records(), 5);
    }

    #[test]
    fn a_member_named_twice_is_a_reject_not_a_silent_choice() {
        let parsed = parse_song_file(
            "s.json",
            b"{\"song_id\":\"S1\",\"SONG_ID\":\"S2\"}\n{\"song_id\":\"S3\",\"artist_id\":\"A\",\"big\":[[[1,2],{\"a\":[3]}]]}\n",
        );
        assert_eq!(parsed.rows.len(), 1, "{:?}", parsed.rejects);
        assert!(
            parsed.rejects[0].reason.contains("appears twice"),
            "{:?}",
            parsed.rejects
        );
        let mapping = mapping();
        let log = parse_log_file("l.json", b"{\"song\":\"a\",\"song\":\"b\"}\n", &mapping);
        assert!(log.rows.is_empty());
        assert!(
            log.rejects[0].reason.contains("appears twice"),
            "{:?}",
            log.rejects
        );
    }

    #[test]
    fn a_broken_song_object_is_one_reject_and_the_next_objects_are_read() {
        let text = "{\"song_id\":\"S1\",\"artist_id\":\"A1\"}\n{\"song_id\": \"S2\", oops\n  \"x\": 1}\n{\n  \"song_id\": \"S3\",\n  \"artist_id\": \"A3\"\n}\n{\"song_id\":\"S4\",\"artist_id\":\"A4\"}";
        let parsed = parse_song_file("s.json", text.as_bytes());
        let ids: Vec<_> = parsed.rows.iter().map(|r| r[6].clone()).collect();
        assert_eq!(
            ids,
            ["S1", "S3", "S4"].map(|id| crate::record::Field::Text(id.into())),
            "{:?}",
            parsed.rejects
        );
        assert_eq!(parsed.rejects.len(), 1);
        assert_eq!(parsed.rejects[0].line, Some(2));
        assert!(parsed.rejects[0].raw_text.contains("oops"));
        assert!(!parsed.rejects[0].raw_text.contains("S3"));
    }

    #[test]
    fn an_empty_song_file_is_a_reject() {
        for text in ["", " \n\t\n", "\u{feff}"] {
            let parsed = parse_song_file("s.json", text.as_bytes());
            assert_eq!(parsed.rows.len(), 0);
            assert_eq!(parsed.rejects.len(), 1, "{text:?}");
            assert!(parsed.rejects[0].reason.starts_with("empty file"));
        }
    }

    #[test]
    fn song_without_song_id_is_rejected() {
        let parsed = parse_song_file("s.json", br#"{"artist_id":"A1","title":"T"}"#);
        assert_eq!(parsed.rows.len(), 0);
        assert!(parsed.rejects[0].reason.starts_with("song_id"));
    }
}
