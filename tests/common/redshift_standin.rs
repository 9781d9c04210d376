//! A stand-in for Amazon Redshift on the local PostgreSQL server, so that the statements the
//! redshift and redshift-data engines send are *executed* in the tests, not only parsed. It
//! serves both ways in: Redshift's wire protocol (a TLS relay to PostgreSQL, as the redshift
//! engine connects) and the Redshift Data API (an HTTP server speaking its JSON protocol, as
//! the redshift-data engine calls it). Each statement reaches PostgreSQL as sent, except for the
//! changes listed in [`REWRITES`], each with why the answer stays Redshift's; `COPY ... FROM
//! 's3://...'` is carried out by the stand-in itself, reading the objects the loopback S3 server
//! serves (see [`Copy`]) and recording the load in `sys_load_history` and
//! `sys_load_error_detail` as Redshift does.
//!
//! What it does not imitate: Redshift compares strings ignoring trailing blanks
//! (https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html, "Significance of
//! trailing blanks"), PostgreSQL's varchar does not; the statements guard every string equality
//! with LENGTH, so both give the same answer, but a missing guard would not be caught here.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

/// Every change made to a statement before PostgreSQL runs it, and why the answer is still the
/// one Redshift gives. Nothing else is changed.
pub const REWRITES: &[(&str, &str)] = &[
    (
        "COLLATE CASE_SENSITIVE after a column type: COLLATE \"C\"",
        "Redshift compares case-sensitively and orders text (ORDER BY, MIN, MAX, RANK) by \
         \"binary UTF8 ordering\" (https://docs.aws.amazon.com/redshift/latest/dg/c_collation_sequences.html), \
         which is PostgreSQL's \"C\" collation on UTF-8, whatever the database's default",
    ),
    (
        "DISTSTYLE, DISTKEY, SORTKEY (and ENCODE after a column type): removed",
        "they choose where rows are stored, in which order and how compressed \
         (https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html), never what a \
         query returns",
    ),
    (
        "PRIMARY KEY, UNIQUE and REFERENCES in CREATE TABLE: removed",
        "Redshift does not enforce them: \"uniqueness, primary key, and foreign key constraints \
         are informational only\" (https://docs.aws.amazon.com/redshift/latest/dg/t_Defining_constraints.html); \
         PostgreSQL would, and fail statements Redshift runs (NOT NULL, which Redshift enforces, \
         is kept)",
    ),
    (
        "COPY ... FROM 's3://...': carried out by the stand-in (see Copy), then an INSERT of the \
         rows it made into the same table in the same session and transaction",
        "PostgreSQL cannot read S3; the stand-in reads the same objects, maps them as COPY's JSON \
         format does, and records the load in the SYS views",
    ),
];

/// Set on every session before its first statement: settings and names Redshift has and
/// PostgreSQL has otherwise. Not rewrites: no statement is changed by them.
/// - `standard_conforming_strings = off`: in Redshift a backslash in a string literal escapes
///   (QUOTE_LITERAL "doubles any embedded single quotation marks and backslashes",
///   https://docs.aws.amazon.com/redshift/latest/dg/r_QUOTE_LITERAL.html); PostgreSQL reads
///   `'\\'` so only with this setting.
/// - `sys_load_history` and `sys_load_error_detail`: temporary views over the stand-in's
///   records, found before any schema as Redshift's system views are found whatever the
///   search_path (PostgreSQL searches the session's temporary schema first).
const SESSION_SETUP: &str = "SET standard_conforming_strings = off; \
     SET escape_string_warning = off; \
     CREATE TEMP VIEW sys_load_history AS SELECT * FROM redshift_standin.load_history; \
     CREATE TEMP VIEW sys_load_error_detail AS SELECT * FROM redshift_standin.load_error_detail";

/// The stand-in's own records of loads, kept outside every session's transaction (as Redshift's
/// SYS views are: a rolled-back COPY keeps its rows). File names are `character(256)`, as in
/// Redshift, so a longer one is cut.
const RECORDS: &str = "CREATE SCHEMA IF NOT EXISTS redshift_standin; \
     CREATE SEQUENCE IF NOT EXISTS redshift_standin.query_ids START 7000; \
     CREATE TABLE IF NOT EXISTS redshift_standin.load_history (query_id BIGINT, \
         session_id INTEGER, table_name CHARACTER(128), data_source CHARACTER(1024), \
         status CHARACTER(30), loaded_rows BIGINT, error_count BIGINT, start_time TIMESTAMP); \
     CREATE TABLE IF NOT EXISTS redshift_standin.load_error_detail (query_id BIGINT, \
         session_id INTEGER, file_name CHARACTER(256), line_number BIGINT, \
         column_name CHARACTER(127), error_message CHARACTER(512), start_time TIMESTAMP)";

/// The local server's certificate (Debian's snakeoil, for `localhost`), which the wire side
/// presents; the redshift engine is given it as `[CLUSTER] SSLROOTCERT`.
pub const CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
const KEY: &str = "/etc/ssl/private/ssl-cert-snakeoil.key";

/// The region the stand-in "runs in", and of every bucket but those named `*-eu-west-1` (as the
/// loopback S3 server answers HeadBucket).
pub const REGION: &str = "us-east-1";

/// What one statement becomes.
#[derive(Debug)]
enum Rewritten {
    Sql(String),
    Copy(Copy),
}

/// A running stand-in.
pub struct StandIn {
    shared: Arc<Shared>,
    /// Port of the wire side (TLS, `localhost`).
    pub wire_port: u16,
    /// Endpoint of the Data API side (`AWS_ENDPOINT_URL_REDSHIFT_DATA`).
    pub data_api: String,
}

struct Shared {
    /// The directory the loopback S3 server serves (a subdirectory per bucket).
    s3_root: PathBuf,
    /// The schema the warehouse's tables are in (`[WAREHOUSE] SCHEMA`).
    schema: String,
    runtime: tokio::runtime::Runtime,
    /// The stand-in's own connection, for its records (autocommit).
    records: tokio_postgres::Client,
    data_api: Mutex<DataApi>,
    /// Wire sessions that reached PostgreSQL.
    wire_sessions: std::sync::atomic::AtomicUsize,
}

impl StandIn {
    /// Starts both sides for a warehouse in `schema` of the local database `test`, reading S3
    /// objects under `s3_root`. `None` (with a notice) when the local server or its certificate
    /// is missing outside CI.
    pub fn start(s3_root: &Path, schema: &str) -> Option<StandIn> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        if !Path::new(CERT).exists() || !Path::new(KEY).exists() {
            assert!(!ci, "{CERT} is missing, and CI=true requires it");
            eprintln!("NOTICE: skipping: no {CERT} for the stand-in's TLS");
            return None;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let records = match runtime.block_on(connect("test")) {
            Ok(client) => client,
            Err(e) => {
                assert!(!ci, "no local PostgreSQL ({e}), and CI=true requires it");
                eprintln!("NOTICE: skipping: no local PostgreSQL ({e})");
                return None;
            }
        };
        runtime.block_on(async {
            // Tests running at once would race on CREATE ... IF NOT EXISTS.
            records
                .batch_execute("SELECT pg_advisory_lock(5439)")
                .await
                .unwrap();
            records.batch_execute(RECORDS).await.unwrap();
            records
                .batch_execute("SELECT pg_advisory_unlock(5439)")
                .await
                .unwrap();
            records
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .await
                .unwrap();
        });
        let shared = Arc::new(Shared {
            s3_root: s3_root.to_path_buf(),
            schema: schema.to_string(),
            runtime,
            records,
            data_api: Mutex::default(),
            wire_sessions: Default::default(),
        });
        let wire = TcpListener::bind("127.0.0.1:0").unwrap();
        let wire_port = wire.local_addr().unwrap().port();
        let tls = Arc::new(tls_config());
        let on_wire = shared.clone();
        std::thread::spawn(move || {
            for stream in wire.incoming().flatten() {
                let (shared, tls) = (on_wire.clone(), tls.clone());
                std::thread::spawn(move || {
                    if let Err(e) = serve_wire(stream, &shared, tls) {
                        eprintln!("stand-in wire session ended: {e}");
                    }
                });
            }
        });
        let http = TcpListener::bind("127.0.0.1:0").unwrap();
        let data_api = format!("http://{}", http.local_addr().unwrap());
        let on_http = shared.clone();
        std::thread::spawn(move || {
            for stream in http.incoming().flatten() {
                let shared = on_http.clone();
                std::thread::spawn(move || serve_http(stream, &shared));
            }
        });
        Some(StandIn {
            shared,
            wire_port,
            data_api,
        })
    }

    /// Drops the warehouse's schema.
    pub fn drop_schema(&self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.shared.schema);
        self.shared
            .runtime
            .block_on(self.shared.records.batch_execute(&sql))
            .unwrap();
    }

    /// How many wire sessions reached PostgreSQL.
    pub fn wire_sessions(&self) -> usize {
        self.shared
            .wire_sessions
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many Data API sessions were opened.
    pub fn data_api_sessions(&self) -> usize {
        self.shared.data_api.lock().unwrap().sessions_opened
    }
}

async fn connect(database: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port=5432 user=postgres dbname={database}"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(connection);
    Ok(client)
}

fn tls_config() -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(CERT)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(KEY).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Rewriting

/// The statements of `sql` (split at semicolons outside quotes), each rewritten. A COPY from S3
/// must be alone.
fn rewrite(sql: &str) -> Result<Rewritten, String> {
    let statements = split_statements(sql);
    if let [one] = statements.as_slice() {
        if is_s3_copy(one) {
            return Copy::parse(one).map(Rewritten::Copy);
        }
    }
    let mut out = Vec::new();
    for statement in statements {
        if is_s3_copy(&statement) {
            return Err("the stand-in runs a COPY from S3 only as a statement of its own".into());
        }
        out.push(rewrite_statement(&statement)?);
    }
    Ok(Rewritten::Sql(out.join(";\n")))
}

fn is_s3_copy(statement: &str) -> bool {
    let upper = statement.trim_start().to_ascii_uppercase();
    upper.starts_with("COPY ") && upper.contains("FROM 'S3://")
}

fn split_statements(sql: &str) -> Vec<String> {
    split_outside(sql, ';')
}

/// `text` split at `separator` where it stands outside quotes (a backslash escaping within a
/// string literal, as in Redshift) and parentheses; empty pieces dropped.
fn split_outside(text: &str, separator: char) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\\') => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
                continue;
            }
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, c) if c == separator && depth == 0 => {
                if !current.trim().is_empty() {
                    pieces.push(std::mem::take(&mut current));
                }
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        pieces.push(current);
    }
    pieces
}

/// The CREATE TABLE rewrites of [`REWRITES`]; any other statement as it is.
fn rewrite_statement(statement: &str) -> Result<String, String> {
    let trimmed = statement.trim();
    if !trimmed.to_ascii_uppercase().starts_with("CREATE TABLE ") {
        return Ok(statement.to_string());
    }
    let open = trimmed
        .find('(')
        .ok_or("CREATE TABLE without a column list")?;
    let mut depth = 0;
    let mut close = None;
    for (i, c) in trimmed.char_indices().skip_while(|(i, _)| *i < open) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close.ok_or("CREATE TABLE with an unclosed column list")?;
    let items = split_outside(&trimmed[open + 1..close], ',');
    let mut kept = Vec::new();
    for item in items {
        let upper = item.trim().to_ascii_uppercase();
        if ["PRIMARY KEY", "UNIQUE", "FOREIGN KEY", "REFERENCES"]
            .iter()
            .any(|constraint| upper.starts_with(constraint))
        {
            continue;
        }
        let words: Vec<&str> = item.split_whitespace().collect();
        let mut column = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let word = words[i].to_ascii_uppercase();
            match word.as_str() {
                "COLLATE"
                    if words.get(i + 1).map(|w| w.to_ascii_uppercase()).as_deref()
                        == Some("CASE_SENSITIVE") =>
                {
                    column.push("COLLATE \"C\"");
                    i += 2
                }
                "ENCODE" => i += 2,
                "DISTKEY" | "SORTKEY" => i += 1,
                "IDENTITY" | "IDENTITY(0,1)" | "COLLATE" => {
                    return Err(format!("the stand-in has no rewrite for {item:?}"))
                }
                _ => {
                    column.push(words[i]);
                    i += 1;
                }
            }
        }
        kept.push(format!("    {}", column.join(" ")));
    }
    // After the column list only the table attributes may follow.
    let tail = trimmed[close + 1..].trim();
    let mut words = tail.split_whitespace().peekable();
    while let Some(word) = words.next() {
        match word.to_ascii_uppercase().as_str() {
            "DISTSTYLE" | "BACKUP" => {
                words.next();
            }
            "COMPOUND" | "INTERLEAVED" => {}
            w if w.starts_with("DISTKEY") || w.starts_with("SORTKEY") => {
                // The key list: "(a, b)" possibly over several words.
                let mut text = word.to_string();
                while !text.contains(')') {
                    match words.next() {
                        Some(next) => text.push_str(next),
                        None => return Err(format!("unclosed {word} in {tail:?}")),
                    }
                }
            }
            other => {
                return Err(format!(
                    "the stand-in has no rewrite for {other:?} in {tail:?}"
                ))
            }
        }
    }
    Ok(format!(
        "{} (\n{}\n)",
        &trimmed[..open].trim_end(),
        kept.join(",\n")
    ))
}

// ---------------------------------------------------------------------------------------------
// COPY

/// A `COPY table (columns) FROM 's3://...'` with the JSON format, as Redshift carries it out
/// (https://docs.aws.amazon.com/redshift/latest/dg/copy-usage_notes-copy-from-json.html):
/// every object under the prefix, or exactly the manifest's entries
/// (https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html); each
/// JSON object a record, mapped by key (`'auto'`, `'auto ignorecase'`) or by a JSONPaths file
/// (as many expressions as columns); a record that cannot be typed skipped and recorded in
/// `sys_load_error_detail`, and the load failed when the errors reach MAXERROR
/// (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-load.html#copy-maxerror).
#[derive(Debug, Clone)]
pub struct Copy {
    table: String,
    columns: Vec<String>,
    from: String,
    manifest: bool,
    json: String,
    region: Option<String>,
    maxerror: u64,
}

/// A Redshift string literal's value: `''` is a quote, a backslash escapes the next character.
fn literal(words: &mut std::iter::Peekable<std::vec::IntoIter<Token>>) -> Result<String, String> {
    match words.next() {
        Some(Token::Literal(text)) => Ok(text),
        other => Err(format!("expected a string literal, found {other:?}")),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Literal(String),
    Open,
    Close,
    Comma,
}

fn tokens(sql: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() || c == ';' => {}
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            ',' => out.push(Token::Comma),
            '\'' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unclosed string literal".into()),
                        Some('\\') => text.push(chars.next().ok_or("dangling backslash")?),
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some('\'') => break,
                        Some(other) => text.push(other),
                    }
                }
                out.push(Token::Literal(text));
            }
            _ => {
                let mut word = c.to_string();
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || "(),;'".contains(next) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

impl Copy {
    fn parse(sql: &str) -> Result<Copy, String> {
        let mut words = tokens(sql)?.into_iter().peekable();
        let word = |token: Option<Token>| match token {
            Some(Token::Word(w)) => Ok(w),
            other => Err(format!("expected a word, found {other:?}")),
        };
        if !word(words.next())?.eq_ignore_ascii_case("COPY") {
            return Err("not a COPY".into());
        }
        let table = word(words.next())?;
        let mut columns = Vec::new();
        if words.peek() == Some(&Token::Open) {
            words.next();
            loop {
                match words.next() {
                    Some(Token::Word(column)) => columns.push(column),
                    Some(Token::Comma) => {}
                    Some(Token::Close) => break,
                    other => return Err(format!("bad column list at {other:?}")),
                }
            }
        }
        let mut copy = Copy {
            table,
            columns,
            from: String::new(),
            manifest: false,
            json: String::new(),
            region: None,
            maxerror: 0,
        };
        while let Some(token) = words.next() {
            let option = word(Some(token))?.to_ascii_uppercase();
            match option.as_str() {
                "FROM" => copy.from = literal(&mut words)?,
                "IAM_ROLE" => {
                    literal(&mut words)?;
                }
                "FORMAT" => {
                    let mut next = word(words.next())?;
                    if next.eq_ignore_ascii_case("AS") {
                        next = word(words.next())?;
                    }
                    if !next.eq_ignore_ascii_case("JSON") {
                        return Err(format!("the stand-in copies JSON only, not {next}"));
                    }
                    copy.json = literal(&mut words)?;
                }
                "MANIFEST" => copy.manifest = true,
                "REGION" => {
                    if matches!(words.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("AS"))
                    {
                        words.next();
                    }
                    copy.region = Some(literal(&mut words)?);
                }
                "STATUPDATE" | "COMPUPDATE" => {
                    word(words.next())?;
                }
                "MAXERROR" => {
                    let mut next = word(words.next())?;
                    if next.eq_ignore_ascii_case("AS") {
                        next = word(words.next())?;
                    }
                    copy.maxerror = next.parse().map_err(|_| format!("MAXERROR {next}"))?;
                }
                other => return Err(format!("the stand-in does not know COPY option {other}")),
            }
        }
        if copy.from.is_empty() || copy.json.is_empty() {
            return Err("a COPY from S3 needs FROM and FORMAT AS JSON".into());
        }
        Ok(copy)
    }
}

/// One column of the COPY's table, from the catalogue.
struct Target {
    name: String,
    ty: String,
    width: Option<usize>,
    required: bool,
}

/// A record COPY skipped.
struct LoadError {
    file: String,
    line: u64,
    column: String,
    message: String,
}

/// What the stand-in made of a COPY: the statement that adds its rows to the table, or the
/// error Redshift would give.
impl Shared {
    fn carry_out(&self, copy: &Copy, session_pid: i32) -> Result<String, String> {
        let targets = self.targets(copy)?;
        let region = copy.region.as_deref().unwrap_or(REGION);
        let (bucket, _) = split_s3(&copy.from)?;
        self.check_region(bucket, region)?;
        let files: Vec<String> = if copy.manifest {
            let manifest: Value = serde_json::from_str(&self.read_s3(&copy.from)?)
                .map_err(|e| format!("the manifest is not JSON: {e}"))?;
            let mut urls = Vec::new();
            for entry in manifest["entries"]
                .as_array()
                .ok_or("a manifest without entries")?
            {
                let url = entry["url"]
                    .as_str()
                    .ok_or("a manifest entry without url")?;
                let mandatory = entry["mandatory"].as_bool().unwrap_or(false);
                self.check_region(split_s3(url)?.0, region)?;
                if self.s3_path(url)?.is_file() {
                    urls.push(url.to_string());
                } else if mandatory {
                    return Err(format!("Manifest file is missing a mandatory file: {url}"));
                }
            }
            urls
        } else {
            self.list_s3(&copy.from)?
        };
        let paths: Option<Vec<Vec<String>>> = match copy.json.to_ascii_lowercase().as_str() {
            "auto" | "auto ignorecase" => None,
            _ => {
                let (bucket, _) = split_s3(&copy.json)?;
                self.check_region(bucket, region)?;
                let document: Value = serde_json::from_str(&self.read_s3(&copy.json)?)
                    .map_err(|e| format!("Invalid JSONPath format: {e}"))?;
                let expressions = document["jsonpaths"]
                    .as_array()
                    .ok_or("Invalid JSONPath format: no \"jsonpaths\" array")?;
                if expressions.len() != targets.len() {
                    return Err(format!(
                        "Number of jsonpaths and the number of columns should match. JSONPath \
                         size: {}, Number of columns in table or column list: {}",
                        expressions.len(),
                        targets.len()
                    ));
                }
                Some(
                    expressions
                        .iter()
                        .map(|e| json_path(e.as_str().unwrap_or_default()))
                        .collect::<Result<_, _>>()?,
                )
            }
        };
        let ignore_case = copy.json.eq_ignore_ascii_case("auto ignorecase");
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for url in &files {
            let text = self.read_s3(url)?;
            for (line, record) in records(&text) {
                let record = match record {
                    Ok(Value::Object(record)) => record,
                    Ok(_) => {
                        errors.push(LoadError {
                            file: url.clone(),
                            line,
                            column: String::new(),
                            message: "Invalid JSON object".into(),
                        });
                        continue;
                    }
                    Err(message) => {
                        errors.push(LoadError {
                            file: url.clone(),
                            line,
                            column: String::new(),
                            message,
                        });
                        continue;
                    }
                };
                let mut row = Map::new();
                let mut failed = None;
                for (i, target) in targets.iter().enumerate() {
                    let value = match &paths {
                        Some(paths) => lookup(&record, &paths[i]),
                        None => record
                            .iter()
                            .find(|(key, _)| {
                                if ignore_case {
                                    key.eq_ignore_ascii_case(&target.name)
                                } else {
                                    **key == target.name
                                }
                            })
                            .map(|(_, v)| v.clone()),
                    };
                    match convert(value, target) {
                        Ok(value) => {
                            row.insert(target.name.clone(), value);
                        }
                        Err(message) => {
                            failed = Some((target.name.clone(), message));
                            break;
                        }
                    }
                }
                match failed {
                    None => rows.push(Value::Object(row)),
                    Some((column, message)) => errors.push(LoadError {
                        file: url.clone(),
                        line,
                        column,
                        message,
                    }),
                }
            }
        }
        let failed = !errors.is_empty() && errors.len() as u64 >= copy.maxerror;
        self.record(copy, session_pid, &rows, &errors, failed)?;
        if failed {
            return Err(format!(
                "Load into table '{}' failed. Check 'sys_load_error_detail' system table for \
                 details.",
                copy.table
            ));
        }
        let columns = targets
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let data = Value::Array(rows).to_string();
        let mut tag = "standin".to_string();
        while data.contains(&format!("${tag}$")) {
            tag.push('x');
        }
        Ok(format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM \
             json_populate_recordset(NULL::{table}, ${tag}${data}${tag}$::json)",
            table = copy.table
        ))
    }

    /// The COPY's columns with their types, in its order (all of the table's without a list).
    fn targets(&self, copy: &Copy) -> Result<Vec<Target>, String> {
        let rows = self
            .runtime
            .block_on(self.records.query(
                "SELECT column_name::text, data_type::text, character_maximum_length::int4, \
                 is_nullable::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&self.schema, &copy.table],
            ))
            .map_err(|e| format!("{e}"))?;
        let all: Vec<Target> = rows
            .iter()
            .map(|row| Target {
                name: row.get(0),
                ty: row.get(1),
                width: row.get::<_, Option<i32>>(2).map(|w| w as usize),
                required: row.get::<_, String>(3) == "NO",
            })
            .collect();
        if all.is_empty() {
            return Err(format!(
                "relation \"{}\" does not exist in schema {}",
                copy.table, self.schema
            ));
        }
        if copy.columns.is_empty() {
            return Ok(all);
        }
        let mut by_name: HashMap<String, Target> =
            all.into_iter().map(|t| (t.name.clone(), t)).collect();
        copy.columns
            .iter()
            .map(|c| {
                by_name.remove(&c.to_ascii_lowercase()).ok_or_else(|| {
                    format!(
                        "column \"{c}\" of relation \"{}\" does not exist",
                        copy.table
                    )
                })
            })
            .collect()
    }

    fn record(
        &self,
        copy: &Copy,
        session_pid: i32,
        rows: &[Value],
        errors: &[LoadError],
        failed: bool,
    ) -> Result<(), String> {
        self.runtime
            .block_on(async {
                let id: i64 = self
                    .records
                    .query_one("SELECT nextval('redshift_standin.query_ids')", &[])
                    .await?
                    .get(0);
                for error in errors {
                    self.records
                        .execute(
                            "INSERT INTO redshift_standin.load_error_detail VALUES ($1, $2, \
                             $3::text::character(256), $4, $5::text::character(127), \
                             $6::text::character(512), clock_timestamp())",
                            &[
                                &id,
                                &session_pid,
                                &error.file,
                                &(error.line as i64),
                                &error.column,
                                &error.message,
                            ],
                        )
                        .await?;
                }
                self.records
                    .execute(
                        "INSERT INTO redshift_standin.load_history VALUES ($1, $2, $3::text, \
                         $4::text, $5::text, $6, $7, clock_timestamp())",
                        &[
                            &id,
                            &session_pid,
                            &copy.table,
                            &copy.from,
                            &(if failed { "aborted" } else { "completed" }),
                            &(if failed { 0 } else { rows.len() as i64 }),
                            &(errors.len() as i64),
                        ],
                    )
                    .await?;
                Ok::<_, tokio_postgres::Error>(())
            })
            .map_err(|e| format!("the stand-in could not record the load: {e}"))
    }

    /// A bucket's region, as the loopback S3 server gives it; COPY refuses a bucket outside its
    /// REGION as S3 answers such a request (a redirect to the bucket's own endpoint).
    fn check_region(&self, bucket: &str, region: &str) -> Result<(), String> {
        let bucket_region = if bucket.ends_with("-eu-west-1") {
            "eu-west-1"
        } else {
            REGION
        };
        if bucket_region != region {
            return Err(format!(
                "S3ServiceException:The bucket you are attempting to access must be addressed \
                 using the specified endpoint. Please send all future requests to this \
                 endpoint.,Status 301,Error PermanentRedirect,Bucket {bucket}"
            ));
        }
        Ok(())
    }

    fn s3_path(&self, url: &str) -> Result<PathBuf, String> {
        let (bucket, key) = split_s3(url)?;
        Ok(self.s3_root.join(bucket).join(key))
    }

    fn read_s3(&self, url: &str) -> Result<String, String> {
        let path = self.s3_path(url)?;
        std::fs::read_to_string(&path).map_err(|e| {
            format!("S3ServiceException:The specified key does not exist ({url}: {e})")
        })
    }

    /// Every object whose key begins with the prefix, in key order.
    fn list_s3(&self, url: &str) -> Result<Vec<String>, String> {
        let (bucket, prefix) = split_s3(url)?;
        let root = self.s3_root.join(bucket);
        let mut keys = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(|e| format!("{url}: {e}"))? {
                let path = entry.map_err(|e| e.to_string())?.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let key = path
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .to_string();
                    if key.starts_with(prefix) {
                        keys.push(key);
                    }
                }
            }
        }
        keys.sort();
        if keys.is_empty() {
            return Err(format!("The specified S3 prefix '{prefix}' does not exist"));
        }
        Ok(keys
            .into_iter()
            .map(|key| format!("s3://{bucket}/{key}"))
            .collect())
    }
}

fn split_s3(url: &str) -> Result<(&str, &str), String> {
    url.strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| format!("{url} is not an s3:// URL"))
}

/// The records of one object with the line each ends on: JSON objects one after another,
/// separated by white space. A record that is not JSON is an error on its line, and reading
/// goes on at the next line.
fn records(text: &str) -> Vec<(u64, Result<Value, String>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let line_at = |offset: usize| text[..offset].matches('\n').count() as u64 + 1;
    while start < text.len() {
        let rest = &text[start..];
        let skipped = rest.len() - rest.trim_start().len();
        start += skipped;
        if start >= text.len() {
            break;
        }
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                let end = start + stream.byte_offset();
                out.push((line_at(end), Ok(value)));
                start = end;
            }
            Some(Err(e)) => {
                out.push((line_at(start), Err(format!("Invalid JSON: {e}"))));
                start = match text[start..].find('\n') {
                    Some(newline) => start + newline + 1,
                    None => text.len(),
                };
            }
            None => break,
        }
    }
    out
}

/// The keys of a JSONPath expression of the forms COPY takes: `$['a']`, `$["a"]`, `$.a`, and
/// array indexes `[0]`.
fn json_path(expression: &str) -> Result<Vec<String>, String> {
    let invalid = || format!("Invalid JSONPath format: {expression:?}");
    let mut rest = expression.strip_prefix('$').ok_or_else(invalid)?;
    let mut keys = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            keys.push(after[..end].to_string());
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(invalid)?;
            let inner = after[..end].trim();
            let key = inner
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
                .unwrap_or(inner);
            keys.push(key.to_string());
            rest = &after[end + 1..];
        } else {
            return Err(invalid());
        }
    }
    Ok(keys)
}

fn lookup(record: &Map<String, Value>, path: &[String]) -> Option<Value> {
    let mut value = record.get(path.first()?)?;
    for key in &path[1..] {
        value = match value {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value.clone())
}

/// One JSON value typed for its column, as COPY does: a missing key or null is NULL (refused by
/// a NOT NULL column); a number or a numeric string for a numeric column, and an empty or blank
/// string NULL there ("blank fields for other data types, such as INT, are always loaded with
/// NULL", https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-conversion.html);
/// an object or array loaded into text as its JSON (copy-usage_notes-copy-from-json.html); text
/// longer than the column refused (no TRUNCATECOLUMNS) unless the excess is blanks, which are
/// cut.
fn convert(value: Option<Value>, target: &Target) -> Result<Value, String> {
    let value = value.unwrap_or(Value::Null);
    if value.is_null() {
        if target.required {
            return Err("Missing data for not-null field".into());
        }
        return Ok(Value::Null);
    }
    let shown = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match target.ty.as_str() {
        "integer" | "bigint" | "smallint" => {
            let number = match &value {
                Value::Number(n) => n.as_i64().or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9e18)
                        .map(|f| f as i64)
                }),
                Value::String(s) if s.trim().is_empty() => {
                    return if target.required {
                        Err("Missing data for not-null field".into())
                    } else {
                        Ok(Value::Null)
                    }
                }
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            let number = number.ok_or_else(|| {
                format!(
                    "Invalid digit, Value '{}', Pos 0, Type: {}",
                    shown(&value),
                    if target.ty == "bigint" {
                        "Long"
                    } else {
                        "Integer"
                    }
                )
            })?;
            let fits = match target.ty.as_str() {
                "integer" => i32::try_from(number).is_ok(),
                "smallint" => i16::try_from(number).is_ok(),
                _ => true,
            };
            if !fits {
                return Err(format!("Overflow, Value '{number}', Pos 0, Type: Integer"));
            }
            Ok(json!(number))
        }
        "double precision" | "real" => {
            let number = match &value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) if s.trim().is_empty() => return Ok(Value::Null),
                Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                _ => None,
            };
            number.map(|f| json!(f)).ok_or_else(|| {
                format!(
                    "Invalid digit, Value '{}', Pos 0, Type: Double",
                    shown(&value)
                )
            })
        }
        "character varying" | "character" | "text" => {
            let text = shown(&value);
            if text.contains('\0') {
                return Err("Invalid null byte - field longer than 1 byte".into());
            }
            if let Some(width) = target.width {
                // A longer string whose excess is blanks is cut to the width
                // (r_Character_types.html, "Significance of trailing blanks").
                if text.len() > width && text.as_bytes()[width..].iter().all(|b| *b == b' ') {
                    return Ok(Value::String(text[..width].to_string()));
                }
                if text.len() > width {
                    return Err(format!(
                        "String length exceeds DDL length (length {}, DDL length {width})",
                        text.len()
                    ));
                }
            }
            Ok(Value::String(text))
        }
        other => Err(format!("the stand-in does not copy into {other} columns")),
    }
}

// ---------------------------------------------------------------------------------------------
// The wire side

fn read_message(stream: &mut impl Read) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head)?;
    let length = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
    let mut body = vec![0u8; length.saturating_sub(4)];
    stream.read_exact(&mut body)?;
    Ok((head[0], body))
}

fn write_message(stream: &mut impl Write, kind: u8, body: &[u8]) -> std::io::Result<()> {
    let mut message = vec![kind];
    message.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    message.extend_from_slice(body);
    stream.write_all(&message)
}

fn query_message(sql: &str) -> Vec<u8> {
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    body
}

/// A statement that fails with `message` and aborts the transaction, as Redshift's error would.
fn failing(message: &str) -> String {
    format!("DO $standin_error$ BEGIN RAISE EXCEPTION '%', $standin_text${message}$standin_text$; END $standin_error$")
}

/// Relays backend messages to the client up to and including ReadyForQuery.
fn relay_until_ready(backend: &mut TcpStream, client: &mut impl Write) -> std::io::Result<()> {
    loop {
        let (kind, body) = read_message(backend)?;
        write_message(client, kind, &body)?;
        if kind == b'Z' {
            return client.flush();
        }
    }
}

fn serve_wire(
    mut tcp: TcpStream,
    shared: &Shared,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let mut first = [0u8; 8];
    tcp.read_exact(&mut first)?;
    let code = u32::from_be_bytes(first[4..8].try_into().unwrap());
    if code != 80877103 {
        // A plain CancelRequest (or any plain startup): passed to PostgreSQL as it is.
        let mut backend = TcpStream::connect("127.0.0.1:5432")?;
        backend.write_all(&first)?;
        let mut rest = Vec::new();
        tcp.set_read_timeout(Some(Duration::from_millis(200)))?;
        let _ = tcp.read_to_end(&mut rest);
        backend.write_all(&rest)?;
        return Ok(());
    }
    tcp.write_all(b"S")?;
    let connection = rustls::ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut client = rustls::StreamOwned::new(connection, tcp);
    let mut length = [0u8; 4];
    client.read_exact(&mut length)?;
    let mut startup = vec![0u8; (u32::from_be_bytes(length) as usize).saturating_sub(4)];
    client.read_exact(&mut startup)?;
    let mut backend = TcpStream::connect("127.0.0.1:5432")?;
    backend.set_nodelay(true)?;
    backend.write_all(&length)?;
    backend.write_all(&startup)?;
    if u32::from_be_bytes(startup[0..4].try_into().unwrap()) == 80877102 {
        // A CancelRequest over TLS: PostgreSQL knows the session by the key it gave.
        return Ok(());
    }
    // The greeting, holding back ReadyForQuery until the session is set up.
    let mut pid = 0i32;
    loop {
        let (kind, body) = read_message(&mut backend)?;
        match kind {
            b'K' => pid = i32::from_be_bytes(body[0..4].try_into().unwrap()),
            b'R' if body[0..4] != [0, 0, 0, 0] => {
                write_message(&mut client, kind, &body)?;
                client.flush()?;
                let (kind, body) = read_message(&mut client)?;
                write_message(&mut backend, kind, &body)?;
                continue;
            }
            b'E' => {
                write_message(&mut client, kind, &body)?;
                return client.flush();
            }
            b'Z' => break,
            _ => {}
        }
        write_message(&mut client, kind, &body)?;
    }
    shared
        .wire_sessions
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    write_message(&mut backend, b'Q', &query_message(SESSION_SETUP))?;
    loop {
        let (kind, body) = read_message(&mut backend)?;
        assert_ne!(
            kind,
            b'E',
            "the stand-in's session setup failed: {}",
            String::from_utf8_lossy(&body)
        );
        if kind == b'Z' {
            write_message(&mut client, kind, &body)?;
            client.flush()?;
            break;
        }
    }
    loop {
        let (kind, body) = read_message(&mut client)?;
        match kind {
            b'Q' => {
                let sql =
                    String::from_utf8_lossy(&body[..body.len().saturating_sub(1)]).to_string();
                let sent = match rewrite(&sql) {
                    Ok(Rewritten::Sql(sql)) => sql,
                    Ok(Rewritten::Copy(copy)) => match shared.carry_out(&copy, pid) {
                        Ok(insert) => insert,
                        Err(message) => failing(&message),
                    },
                    Err(message) => failing(&format!("stand-in: {message}")),
                };
                write_message(&mut backend, b'Q', &query_message(&sent))?;
                relay_until_ready(&mut backend, &mut client)?;
            }
            b'P' => {
                // Parse: statement name, query, parameter types.
                let name_end = body.iter().position(|b| *b == 0).unwrap();
                let query_end =
                    name_end + 1 + body[name_end + 1..].iter().position(|b| *b == 0).unwrap();
                let sql = String::from_utf8_lossy(&body[name_end + 1..query_end]).to_string();
                let sent = match rewrite(&sql) {
                    Ok(Rewritten::Sql(sql)) => sql,
                    Ok(Rewritten::Copy(_)) => {
                        failing("stand-in: a COPY from S3 as a prepared statement")
                    }
                    Err(message) => failing(&format!("stand-in: {message}")),
                };
                let mut rewritten = body[..=name_end].to_vec();
                rewritten.extend_from_slice(sent.as_bytes());
                rewritten.extend_from_slice(&body[query_end..]);
                write_message(&mut backend, b'P', &rewritten)?;
            }
            b'S' => {
                write_message(&mut backend, b'S', &body)?;
                relay_until_ready(&mut backend, &mut client)?;
            }
            b'X' => {
                write_message(&mut backend, b'X', &body)?;
                return Ok(());
            }
            other => write_message(&mut backend, other, &body)?,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Data API side

#[derive(Default)]
struct DataApi {
    sessions: HashMap<String, Session>,
    statements: HashMap<String, Statement>,
    sessions_opened: usize,
    next_id: u64,
}

impl DataApi {
    /// The statement whose `Id` the request names.
    fn statement<'a>(
        &'a self,
        input: &'a Value,
    ) -> Result<(&'a str, &'a Statement), (&'static str, String)> {
        let id = input["Id"].as_str().unwrap_or_default();
        let statement = self
            .statements
            .get(id)
            .ok_or(("ResourceNotFoundException", format!("no statement {id}")))?;
        Ok((id, statement))
    }
}

struct Session {
    client: tokio_postgres::Client,
    pid: i32,
    keep_alive: Duration,
    last_finished: Instant,
}

struct Statement {
    session: Option<String>,
    error: Option<String>,
    columns: Vec<String>,
    records: Vec<Value>,
    has_result_set: bool,
    result_rows: i64,
    query: String,
}

fn serve_http(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let header = |name: &str| {
            head.lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim().to_string())
        };
        let length: usize = header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if stream.read_exact(&mut body).is_err() {
            return;
        }
        let target = header("x-amz-target").unwrap_or_default();
        let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let answer = shared.data_api_call(target.trim_start_matches("RedshiftData."), &input);
        let (status, body) = match answer {
            Ok(output) => ("200 OK", output.to_string()),
            Err((kind, message)) => (
                "400 Bad Request",
                json!({"__type": kind, "message": message}).to_string(),
            ),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\n\
             x-amzn-requestid: standin\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

type ApiResult = Result<Value, (&'static str, String)>;

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

impl Shared {
    fn data_api_call(&self, operation: &str, input: &Value) -> ApiResult {
        match operation {
            "ExecuteStatement" => self.execute_statement(input),
            "DescribeStatement" => {
                let api = self.data_api.lock().unwrap();
                let (id, statement) = api.statement(input)?;
                let mut output = json!({
                    "Id": id,
                    "Status": if statement.error.is_some() { "FAILED" } else { "FINISHED" },
                    "HasResultSet": statement.has_result_set,
                    "ResultRows": statement.result_rows,
                    "QueryString": statement.query,
                    "CreatedAt": now_seconds(),
                    "UpdatedAt": now_seconds(),
                });
                if let Some(session) = &statement.session {
                    output["SessionId"] = json!(session);
                }
                if let Some(error) = &statement.error {
                    output["Error"] = json!(error);
                }
                Ok(output)
            }
            "GetStatementResult" => {
                let api = self.data_api.lock().unwrap();
                let (_, statement) = api.statement(input)?;
                if !statement.has_result_set {
                    return Err(("ValidationException", "Query does not have result.".into()));
                }
                // Pages of 1,000 records, so that readers follow NextToken.
                const PAGE: usize = 1000;
                let from: usize = input["NextToken"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let to = (from + PAGE).min(statement.records.len());
                let mut output = json!({
                    "Records": statement.records[from..to],
                    "ColumnMetadata": statement.columns.iter()
                        .map(|name| json!({"name": name, "label": name}))
                        .collect::<Vec<_>>(),
                    "TotalNumRows": statement.records.len(),
                });
                if to < statement.records.len() {
                    output["NextToken"] = json!(to.to_string());
                }
                Ok(output)
            }
            "CancelStatement" => Ok(json!({"Status": true})),
            other => Err((
                "ValidationException",
                format!("the stand-in has no {other}"),
            )),
        }
    }

    /// Runs the statement before answering (the caller's DescribeStatement then finds it
    /// finished), in the session named or a new one kept for SessionKeepAliveSeconds
    /// (https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_ExecuteStatement.html).
    fn execute_statement(&self, input: &Value) -> ApiResult {
        let sql = input["Sql"].as_str().unwrap_or_default().to_string();
        let mut api = self.data_api.lock().unwrap();
        api.next_id += 1;
        let id = format!("standin-{}", api.next_id);
        let session_id = match input["SessionId"].as_str() {
            Some(session_id) => {
                let session = api.sessions.get(session_id).ok_or((
                    "ValidationException",
                    format!("Session {session_id} is not available"),
                ))?;
                if session.last_finished.elapsed() > session.keep_alive {
                    api.sessions.remove(session_id);
                    return Err((
                        "ValidationException",
                        format!("Session {session_id} is not available: it expired"),
                    ));
                }
                session_id.to_string()
            }
            None => {
                let database = input["Database"].as_str().unwrap_or_default();
                if input["WorkgroupName"].as_str().is_none()
                    && input["ClusterIdentifier"].as_str().is_none()
                {
                    return Err((
                        "ValidationException",
                        "either WorkgroupName or ClusterIdentifier is required".into(),
                    ));
                }
                let client = self
                    .runtime
                    .block_on(connect(database))
                    .map_err(|e| ("ValidationException", format!("{e}")))?;
                let pid: i32 = self
                    .runtime
                    .block_on(async {
                        client.batch_execute(SESSION_SETUP).await?;
                        client.query_one("SELECT pg_backend_pid()", &[]).await
                    })
                    .map_err(|e| ("ValidationException", format!("{e}")))?
                    .get(0);
                let keep_alive =
                    Duration::from_secs(input["SessionKeepAliveSeconds"].as_u64().unwrap_or(0));
                let session_id = format!("standin-session-{}", api.next_id);
                api.sessions_opened += 1;
                api.sessions.insert(
                    session_id.clone(),
                    Session {
                        client,
                        pid,
                        keep_alive,
                        last_finished: Instant::now(),
                    },
                );
                session_id
            }
        };
        let session = api.sessions.get_mut(&session_id).unwrap();
        let outcome = self.run_in_session(session, &sql);
        session.last_finished = Instant::now();
        let statement = match outcome {
            Ok((columns, records, rows)) => Statement {
                session: Some(session_id.clone()),
                error: None,
                has_result_set: !columns.is_empty(),
                columns,
                records,
                result_rows: rows,
                query: sql,
            },
            Err(error) => Statement {
                session: Some(session_id.clone()),
                error: Some(error),
                columns: Vec::new(),
                records: Vec::new(),
                has_result_set: false,
                result_rows: -1,
                query: sql,
            },
        };
        api.statements.insert(id.clone(), statement);
        Ok(json!({
            "Id": id,
            "SessionId": session_id,
            "Database": input["Database"],
            "CreatedAt": now_seconds(),
        }))
    }

    /// One statement of a session: its columns, records as the Data API gives them (numbers
    /// as longValue/doubleValue, everything else as the server's text), and rows.
    fn run_in_session(
        &self,
        session: &Session,
        sql: &str,
    ) -> Result<(Vec<String>, Vec<Value>, i64), String> {
        let sent = match rewrite(sql).map_err(|e| format!("stand-in: {e}"))? {
            Rewritten::Sql(sql) => sql,
            Rewritten::Copy(copy) => self
                .carry_out(&copy, session.pid)
                .unwrap_or_else(|e| failing(&e)),
        };
        let client = &session.client;
        self.runtime.block_on(async {
            // Prepared first for the column types (and so that several statements in one
            // request fail, as ExecuteStatement runs one), then run as sent.
            let prepared = client.prepare(&sent).await.map_err(|e| pg_error(&e))?;
            let types: Vec<tokio_postgres::types::Type> = prepared
                .columns()
                .iter()
                .map(|c| c.type_().clone())
                .collect();
            let columns: Vec<String> = prepared
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect();
            let mut records = Vec::new();
            let mut affected = 0i64;
            for message in client.simple_query(&sent).await.map_err(|e| pg_error(&e))? {
                match message {
                    tokio_postgres::SimpleQueryMessage::Row(row) => {
                        let record: Vec<Value> = (0..types.len())
                            .map(|i| field(row.get(i), &types[i]))
                            .collect();
                        records.push(Value::Array(record));
                    }
                    tokio_postgres::SimpleQueryMessage::CommandComplete(n) => affected = n as i64,
                    _ => {}
                }
            }
            let rows = if columns.is_empty() {
                affected
            } else {
                records.len() as i64
            };
            Ok((columns, records, rows))
        })
    }
}

fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("ERROR: {}", db.message()),
        None => e.to_string(),
    }
}

/// A value as a Data API Field.
fn field(text: Option<&str>, ty: &tokio_postgres::types::Type) -> Value {
    use tokio_postgres::types::Type;
    let Some(text) = text else {
        return json!({"isNull": true});
    };
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 => json!({"longValue": text.parse::<i64>().unwrap()}),
        Type::FLOAT4 | Type::FLOAT8 => json!({"doubleValue": text.parse::<f64>().unwrap()}),
        Type::BOOL => json!({"booleanValue": text == "t"}),
        _ => json!({"stringValue": text}),
    }
}
