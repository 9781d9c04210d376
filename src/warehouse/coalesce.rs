//! `etl --coalesce` (or `[S3] COALESCE = true`) for Redshift: the song catalogue is tens of
//! thousands of objects of a few hundred bytes, and Redshift's COPY reads a JSON file whole on
//! one slice ("File types such as JSON ... aren't automatically split",
//! https://docs.aws.amazon.com/redshift/latest/dg/c_best-practices-use-multiple-files.html), so
//! it pays a request per tiny object; the original project needed 45 minutes for a subset of the
//! song files. Here the small `.json` objects of a source are fetched concurrently and written
//! back to back into a few large objects ("parts") under `[S3] MANIFEST_PREFIX`, as many as
//! AWS's guidance asks (a multiple of the slices, each between 1 MB and 1 GB:
//! https://docs.aws.amazon.com/redshift/latest/dg/t_splitting-data-files.html), and COPY reads
//! the parts through a manifest. COPY takes any number of JSON objects in a file, each over as
//! many lines as it likes
//! (https://docs.aws.amazon.com/redshift/latest/dg/copy-usage_notes-copy-from-json.html), so a
//! part loads the same records as the files it holds.
//!
//! Each file starts on a line of its own in its part, so a record COPY skips (named by part and
//! line in `sys_load_error_detail`) is traced back to its own file and line. A file that is not
//! a sequence of complete JSON values is not coalesced, since an unclosed brace would swallow
//! the records after it: the manifest lists it as itself, and COPY treats it as it would
//! without coalescing. Large objects are listed as themselves too.

use anyhow::{anyhow, bail, Result};
use indicatif::ProgressBar;

use crate::config::Location;
use crate::s3::{Object, S3Store};
use crate::schema::Table;

/// Objects smaller than this are coalesced; larger ones are already the size COPY reads well
/// (AWS's lower bound for a load file, see the module comment).
pub const SMALL_OBJECT_BYTES: u64 = 1 << 20;
/// The size a part aims at when there is plenty to coalesce: well inside AWS's 1 MB to 1 GB.
const PART_TARGET_BYTES: u64 = 64 << 20;
/// Part counts are a multiple of this when there is enough data for every part to reach 1 MB:
/// a multiple of the slices of any node type (2, 4 or 16 slices per node:
/// https://docs.aws.amazon.com/redshift/latest/mgmt/working-with-clusters.html#rs-about-clusters-and-nodes).
const SLICE_MULTIPLE: u64 = 16;
/// Objects fetched per round, at most this many and this many bytes; the store fetches a
/// round's objects concurrently.
const FETCH_ROUND: usize = 1024;
const FETCH_ROUND_BYTES: u64 = 64 << 20;

/// `objects` cut into fetch rounds, in order.
fn fetch_rounds<'a>(objects: &[&'a Object]) -> Vec<Vec<&'a Object>> {
    let mut rounds: Vec<Vec<&Object>> = vec![Vec::new()];
    let mut bytes = 0;
    for &object in objects {
        let round = rounds.last_mut().expect("one round at least");
        if !round.is_empty()
            && (round.len() == FETCH_ROUND || bytes + object.size > FETCH_ROUND_BYTES)
        {
            rounds.push(Vec::new());
            bytes = 0;
        }
        rounds.last_mut().expect("just pushed").push(object);
        bytes += object.size;
    }
    rounds
}

/// Where each file of a part starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The part's line (1-based) that holds the file's first line.
    pub first_line: u64,
    /// The file, as an `s3://` URI.
    pub file: String,
}

/// One part written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub location: Location,
    pub origins: Vec<Origin>,
}

/// What coalescing one source made: the objects COPY reads instead of the source's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coalesced {
    pub parts: Vec<Part>,
    /// Objects COPY reads as themselves: large ones, and files that are not whole JSON values.
    pub apart: Vec<String>,
    /// Source files in all, and their bytes.
    pub files: u64,
    pub bytes: u64,
}

impl Coalesced {
    /// Every object the manifest lists: the parts, then the objects kept apart.
    pub fn manifest_urls(&self) -> Vec<String> {
        self.parts
            .iter()
            .map(|p| p.location.to_string())
            .chain(self.apart.iter().cloned())
            .collect()
    }

    /// The source file and line that line `line` of the load file `file` (as Redshift names
    /// it) came from; `None` when `file` is not a part.
    pub fn origin(&self, file: &str, line: u64) -> Option<(String, u64)> {
        let file = file.trim();
        let part = self.parts.iter().find(|p| p.location.to_string() == file)?;
        let origin = part
            .origins
            .iter()
            .take_while(|o| o.first_line <= line)
            .last()?;
        Some((origin.file.clone(), line - origin.first_line + 1))
    }
}

/// How many parts `bytes` of small objects go into: a multiple of [`SLICE_MULTIPLE`] of at
/// most [`PART_TARGET_BYTES`] each, but never so many that a part falls below 1 MiB; at least
/// one.
pub fn part_count(bytes: u64) -> u64 {
    let by_target = bytes.div_ceil(PART_TARGET_BYTES).div_ceil(SLICE_MULTIPLE) * SLICE_MULTIPLE;
    let at_least_a_mebibyte = (bytes / (1 << 20)).max(1);
    by_target.min(at_least_a_mebibyte).max(1)
}

/// Whether `bytes` are one or more complete JSON values and nothing else but whitespace.
pub fn whole_json_values(bytes: &[u8]) -> bool {
    let mut values =
        serde_json::Deserializer::from_slice(bytes).into_iter::<serde::de::IgnoredAny>();
    let mut any = false;
    for value in &mut values {
        if value.is_err() {
            return false;
        }
        any = true;
    }
    any
}

/// Where part `index` of `table` goes under the prefix.
fn part_location(prefix: &Location, table: &Table, index: usize) -> Location {
    prefix.child(&format!("sparkify-{}-part-{index:05}.json", table.name))
}

/// The parts being filled, written to S3 as each is full.
struct PartWriter<'a> {
    store: &'a S3Store,
    prefix: &'a Location,
    table: &'a Table,
    target: u64,
    count: u64,
    body: Vec<u8>,
    lines: u64,
    origins: Vec<Origin>,
    written: Vec<Part>,
}

impl PartWriter<'_> {
    fn add(&mut self, file: String, bytes: &[u8]) -> Result<()> {
        self.origins.push(Origin {
            first_line: self.lines + 1,
            file,
        });
        self.body.extend_from_slice(bytes);
        if !bytes.ends_with(b"\n") {
            self.body.push(b'\n');
        }
        self.lines += bytes.iter().filter(|&&b| b == b'\n').count() as u64
            + u64::from(!bytes.ends_with(b"\n"));
        if self.body.len() as u64 >= self.target && (self.written.len() as u64) + 1 < self.count {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.origins.is_empty() {
            return Ok(());
        }
        let location = part_location(self.prefix, self.table, self.written.len());
        let Location::S3 { bucket, key } = &location else {
            unreachable!("parts are S3 objects");
        };
        self.store
            .put(bucket, key, std::mem::take(&mut self.body))
            .map_err(|e| {
                anyhow!(
                    "[S3] MANIFEST_PREFIX: cannot write the coalesced part {location}: {e}: the \
                     AWS credentials in use need s3:PutObject there"
                )
            })?;
        tracing::info!(part = %location, files = self.origins.len(), "coalesced part written");
        self.written.push(Part {
            location,
            origins: std::mem::take(&mut self.origins),
        });
        self.lines = 0;
        Ok(())
    }
}

/// Coalesces the `.json` data objects `objects` of `bucket` into parts under `prefix`, named
/// after `table`. A small object that cannot be fetched fails the run, as the COPY of it would.
/// `tick` is called after each round of fetches (the warehouse's keep-alive: see
/// `Warehouse::keep_alive`).
pub fn coalesce(
    store: &S3Store,
    bucket: &str,
    objects: &[Object],
    prefix: &Location,
    table: &Table,
    bar: &ProgressBar,
    tick: &mut dyn FnMut() -> Result<()>,
) -> Result<Coalesced> {
    let url = |key: &str| format!("s3://{bucket}/{key}");
    let (small, large): (Vec<&Object>, Vec<&Object>) =
        objects.iter().partition(|o| o.size < SMALL_OBJECT_BYTES);
    let small_bytes: u64 = small.iter().map(|o| o.size).sum();
    let count = part_count(small_bytes);
    let mut writer = PartWriter {
        store,
        prefix,
        table,
        target: small_bytes.div_ceil(count).max(1),
        count,
        body: Vec::new(),
        lines: 0,
        origins: Vec::new(),
        written: Vec::new(),
    };
    let mut apart: Vec<String> = large.iter().map(|o| url(&o.key)).collect();
    bar.set_length(small.len() as u64);
    for round in fetch_rounds(&small) {
        let keys: Vec<&str> = round.iter().map(|o| o.key.as_str()).collect();
        for (key, contents) in keys.iter().zip(store.get_many(bucket, &keys)) {
            let bytes = match contents {
                Ok(bytes) => bytes,
                Err(e) => bail!("cannot coalesce {}: {e}; nothing was committed", url(key)),
            };
            if whole_json_values(&bytes) {
                writer.add(url(key), &bytes)?;
            } else {
                apart.push(url(key));
            }
        }
        bar.inc(round.len() as u64);
        tick()?;
    }
    writer.flush()?;
    Ok(Coalesced {
        parts: writer.written,
        apart,
        files: objects.len() as u64,
        bytes: objects.iter().map(|o| o.size).sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_a_multiple_of_the_slices_and_at_least_a_mebibyte() {
        const MIB: u64 = 1 << 20;
        assert_eq!(part_count(0), 1);
        assert_eq!(part_count(200 * 1024), 1);
        // The Udacity catalogue: 14,896 files of 272 bytes on average (the sample's).
        assert_eq!(part_count(14_896 * 272), 3);
        assert_eq!(part_count(4 * MIB), 4);
        assert_eq!(part_count(25 * MIB), 16);
        assert_eq!(part_count(2048 * MIB), 32);
        assert_eq!(part_count(5000 * MIB) % 16, 0);
        assert!(5000 * MIB / part_count(5000 * MIB) <= PART_TARGET_BYTES);
    }

    #[test]
    fn fetch_rounds_bound_keys_and_bytes() {
        let objects: Vec<Object> = (0..3000)
            .map(|i| Object {
                key: format!("k{i}"),
                size: if i < 2000 { 100 } else { 900 * 1024 },
                etag: String::new(),
            })
            .collect();
        let refs: Vec<&Object> = objects.iter().collect();
        let rounds = fetch_rounds(&refs);
        assert_eq!(rounds.iter().map(Vec::len).sum::<usize>(), 3000);
        assert_eq!(rounds[0].len(), FETCH_ROUND);
        for round in &rounds {
            let bytes: u64 = round.iter().map(|o| o.size).sum();
            assert!(
                round.len() <= FETCH_ROUND && bytes <= FETCH_ROUND_BYTES,
                "{bytes}"
            );
        }
        let keys: Vec<&str> = rounds.iter().flatten().map(|o| o.key.as_str()).collect();
        assert_eq!(keys[2999], "k2999", "in order");
        assert!(fetch_rounds(&[]).iter().all(Vec::is_empty));
    }

    #[test]
    fn only_complete_json_values_are_coalesced() {
        assert!(whole_json_values(b"{\"a\": 1}"));
        assert!(whole_json_values(b"{\n  \"a\": 1\n}\n"));
        assert!(whole_json_values(b"{\"a\": 1}\n{\"a\": 2}\n"));
        assert!(!whole_json_values(b""));
        assert!(!whole_json_values(b"  \n"));
        assert!(!whole_json_values(b"{\"a\": 1"));
        assert!(!whole_json_values(b"{\"a\": 1} trailing"));
        assert!(!whole_json_values(b"\xEF\xBB\xBF{\"a\": 1}"));
    }

    #[test]
    fn a_line_of_a_part_leads_back_to_its_file_and_line() {
        let part = |key: &str| Location::S3 {
            bucket: "m".into(),
            key: key.into(),
        };
        let coalesced = Coalesced {
            parts: vec![Part {
                location: part("p/sparkify-staging_songs-part-00000.json"),
                origins: vec![
                    Origin {
                        first_line: 1,
                        file: "s3://b/song_data/A.json".into(),
                    },
                    Origin {
                        first_line: 4,
                        file: "s3://b/song_data/B.json".into(),
                    },
                ],
            }],
            apart: vec!["s3://b/song_data/bad.json".into()],
            files: 3,
            bytes: 0,
        };
        let name = "s3://m/p/sparkify-staging_songs-part-00000.json";
        assert_eq!(
            coalesced.origin(name, 2),
            Some(("s3://b/song_data/A.json".into(), 2))
        );
        assert_eq!(
            coalesced.origin(&format!("{name}   "), 5),
            Some(("s3://b/song_data/B.json".into(), 2))
        );
        assert_eq!(coalesced.origin("s3://b/song_data/bad.json", 1), None);
        assert_eq!(
            coalesced.manifest_urls(),
            vec![name.to_string(), "s3://b/song_data/bad.json".to_string()]
        );
    }
}
