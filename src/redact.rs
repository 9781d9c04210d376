//! What keeps secrets out of the log even when a library prints them. The toolkit's own
//! messages never format a secret (see [`crate::config::Secret`]), but at `-vvv` the libraries'
//! logs are shown too, and the AWS SDK prints the credentials it resolved, access key id
//! included, in its identity logs. Every line the log writes passes through [`redact`] first:
//! each secret the process knows (the config's passwords and keys, the AWS variables of the
//! environment) and anything shaped like an AWS access key id is replaced.

use std::io::Write;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const REDACTED: &str = "** redacted **";

/// The secrets the process knows, longest first.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds `value` to what the log never shows. Values shorter than 4 characters are left out:
/// replacing every "ab" in the log would hide everything and protect nothing.
pub fn register(value: &str) {
    if value.chars().count() < 4 {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers the AWS secrets of the environment, which the SDK reads by itself.
pub fn register_environment() {
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "PGPASSWORD",
    ] {
        if let Ok(value) = std::env::var(name) {
            register(&value);
        }
    }
}

/// The prefixes of AWS access key ids and other unique ids that name a principal
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids).
const KEY_ID_PREFIXES: [&[u8; 4]; 10] = [
    b"AKIA", b"ASIA", b"AIDA", b"AROA", b"AGPA", b"ANPA", b"ANVA", b"APKA", b"ABIA", b"ACCA",
];

/// `text` with every known secret and every AWS access key id (a prefix above and 16 more
/// upper-case letters or digits) replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for secret in SECRETS.read().unwrap_or_else(|e| e.into_inner()).iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    redact_key_ids(&out)
}

fn redact_key_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let id_byte = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + 20 <= bytes.len() {
        let starts_word = i == 0 || !id_byte(bytes[i - 1]);
        let is_id = starts_word
            && KEY_ID_PREFIXES.iter().any(|p| &bytes[i..i + 4] == *p)
            && bytes[i + 4..i + 20].iter().all(|b| id_byte(*b))
            && bytes.get(i + 20).is_none_or(|b| !id_byte(*b));
        if is_id {
            out.push_str(&text[copied..i]);
            out.push_str(REDACTED);
            i += 20;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The log's writer: standard error, through [`redact`].
pub struct RedactingStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter
    }
}

/// Writes what it is given to standard error, secrets replaced. The log formats each event
/// whole before writing it, so a secret never straddles two writes.
pub struct RedactingWriter;

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let clean = redact(&String::from_utf8_lossy(buf));
        std::io::stderr().write_all(clean.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_and_access_key_ids_are_replaced() {
        register("Sentinel-Pass-42");
        let line = "Credentials { access_key_id: \"AKIAIOSFODNN7EXAMPLE\", pw: Sentinel-Pass-42 }";
        let clean = redact(line);
        assert!(!clean.contains("AKIAIOSFODNN7EXAMPLE"), "{clean}");
        assert!(!clean.contains("Sentinel-Pass-42"), "{clean}");
        assert_eq!(clean.matches(REDACTED).count(), 2, "{clean}");
        // Not a key id: too short, too long, or inside a longer word.
        for kept in ["AKIA1234", "XAKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLEX"] {
            assert_eq!(redact(kept), kept);
        }
        // Short values are not secrets worth hiding everything for.
        register("ab");
        assert_eq!(redact("abc"), "abc");
    }
}
