//! Loads one source into its staging table in a three-stage pipeline over chunks of files: one
//! thread reads the next chunk (from disk, or fetches it from S3), the parser types the current
//! one in parallel on every core, and the caller appends the previous one to the warehouse, so
//! memory stays bounded by a few chunks whatever the size of the input. Rejects go to
//! `load_errors` as they are found.

use std::sync::mpsc;

use anyhow::Result;
use arrow_array::RecordBatch;
use bytes::Bytes;
use rayon::prelude::*;

use crate::batch::record_batch;
use crate::jsonpaths::JsonPaths;
use crate::parse::{parse_log_file, parse_song_file, ParsedFile, SourceKind};
use crate::progress::Progress;
use crate::record::{Reject, Row};
use crate::schema::LOAD_ERRORS;
use crate::source::{Discovered, SourceFile};
use crate::stats::{SourceStats, REJECTS_SHOWN};
use crate::warehouse::Warehouse;

/// A chunk is cut after this many bytes or files, whichever comes first.
const CHUNK_BYTES: u64 = 16 << 20;
const CHUNK_FILES: usize = 2048;
/// Chunks parsed ahead of the one being appended.
const CHUNKS_AHEAD: usize = 2;
/// The files of one chunk with their contents (or why each could not be read).
type Fetched<'a> = (&'a [SourceFile], Vec<Result<Bytes, String>>);

/// One parsed chunk, ready to append.
struct Chunk {
    batch: RecordBatch,
    rejects: Vec<Reject>,
}

/// Parses one file from its contents (see [`Discovered::read`]); a file that could not be read
/// becomes one reject.
pub fn parse_file(
    file: &SourceFile,
    contents: &Result<Bytes, String>,
    kind: SourceKind,
    mapping: Option<&JsonPaths>,
) -> ParsedFile {
    let name = file.location.to_string();
    let bytes = match contents {
        Ok(bytes) => bytes,
        Err(error) => {
            return ParsedFile {
                rows: Vec::new(),
                rejects: vec![Reject {
                    source: kind.name(),
                    file: name,
                    line: None,
                    reason: format!("cannot read file: {error}"),
                    raw_text: String::new(),
                }],
            }
        }
    };
    match (kind, mapping) {
        (SourceKind::Log, Some(mapping)) => parse_log_file(&name, bytes, mapping),
        (SourceKind::Log, None) => unreachable!("log files are parsed with a JSONPaths mapping"),
        (SourceKind::Song, _) => parse_song_file(&name, bytes),
    }
}

fn chunks(files: &[SourceFile]) -> Vec<&[SourceFile]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, file) in files.iter().enumerate() {
        bytes += file.size;
        if bytes >= CHUNK_BYTES || i + 1 - start >= CHUNK_FILES {
            chunks.push(&files[start..=i]);
            start = i + 1;
            bytes = 0;
        }
    }
    if start < files.len() {
        chunks.push(&files[start..]);
    }
    chunks
}

/// Loads every file of one source into its staging table and its rejects into `load_errors`.
/// Runs inside the caller's transaction. `mapping` is the JSONPaths file for logs.
pub fn load_source(
    warehouse: &mut dyn Warehouse,
    kind: SourceKind,
    discovered: &Discovered,
    mapping: Option<&JsonPaths>,
    progress: &Progress,
) -> Result<SourceStats> {
    tracing::info!(source = kind.name(), root = %discovered.root, files = discovered.files.len(), "loading");
    let mut stats = SourceStats {
        source: kind.name(),
        files: discovered.files.len() as u64,
        bytes: discovered.bytes(),
        ..SourceStats::default()
    };
    let read_bar = progress.bytes(&format!("{} read", kind.name()), stats.bytes);
    let load_bar = progress.spinner(&format!("{} load", kind.name()));
    load_bar.set_message("records staged");

    let (fetched_sender, fetched) = mpsc::sync_channel::<Fetched>(1);
    let (sender, receiver) = mpsc::sync_channel::<Result<Chunk>>(CHUNKS_AHEAD);
    std::thread::scope(|scope| -> Result<()> {
        // Reading (for S3: fetching) the next chunk overlaps parsing this one.
        scope.spawn(move || {
            for files in chunks(&discovered.files) {
                let contents = discovered.read(files);
                if fetched_sender.send((files, contents)).is_err() {
                    return; // the parser stopped
                }
            }
        });
        let read_bar = read_bar.clone();
        scope.spawn(move || {
            for (files, contents) in fetched {
                let parsed: Vec<ParsedFile> = files
                    .par_iter()
                    .zip(&contents)
                    .map(|(file, contents)| {
                        let parsed = parse_file(file, contents, kind, mapping);
                        read_bar.inc(file.size);
                        parsed
                    })
                    .collect();
                drop(contents);
                let mut rows = Vec::with_capacity(parsed.iter().map(|p| p.rows.len()).sum());
                let mut rejects = Vec::new();
                for file in parsed {
                    rows.extend(file.rows);
                    rejects.extend(file.rejects);
                }
                let chunk = record_batch(kind.table(), &rows).map(|batch| Chunk { batch, rejects });
                if sender.send(chunk).is_err() {
                    return; // the appender failed and stopped listening
                }
            }
        });
        for chunk in receiver {
            let chunk = chunk?;
            warehouse.append(kind.table(), &chunk.batch)?;
            if !chunk.rejects.is_empty() {
                let rows: Vec<Row> = chunk.rejects.iter().map(Reject::to_row).collect();
                warehouse.append(&LOAD_ERRORS, &record_batch(&LOAD_ERRORS, &rows)?)?;
            }
            stats.staged += chunk.batch.num_rows() as u64;
            stats.rejected += chunk.rejects.len() as u64;
            let room = REJECTS_SHOWN.saturating_sub(stats.first_rejects.len());
            stats
                .first_rejects
                .extend(chunk.rejects.into_iter().take(room));
            load_bar.set_position(stats.staged);
        }
        Ok(())
    })?;
    stats.records = stats.staged + stats.rejected;
    read_bar.finish_and_clear();
    load_bar.finish_and_clear();
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;

    fn file(size: u64) -> SourceFile {
        SourceFile {
            location: Location::File("f.json".into()),
            size,
            unreadable: None,
        }
    }

    #[test]
    fn chunks_cover_every_file_once_and_respect_the_byte_bound() {
        let files: Vec<_> = (0..10).map(|_| file(CHUNK_BYTES / 2)).collect();
        let chunks = chunks(&files);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 10);
        assert!(chunks.iter().all(|c| c.len() == 2));
        let many: Vec<_> = (0..CHUNK_FILES + 1).map(|_| file(1)).collect();
        assert_eq!(chunks_len(&many), 2);
        assert_eq!(chunks_len(&[]), 0);
    }

    fn chunks_len(files: &[SourceFile]) -> usize {
        chunks(files).len()
    }
}
