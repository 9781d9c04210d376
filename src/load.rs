//! Loads one source into its staging table in a three-stage pipeline over chunks of files: one
//! thread reads the next chunk (from disk, or fetches it from S3), the parser types the current
//! one in parallel on every core, and the caller appends the previous one to the warehouse, so
//! memory stays bounded by a few chunks whatever the size of the input: a local log file larger
//! than a chunk is read in pieces cut at line ends. Rejects go to `load_errors` as they are
//! found. A file that cannot be read is not a record: it fails the load, or, when the caller
//! allows it, is listed apart from the rejects.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::sync::mpsc;

use anyhow::{anyhow, Result};
use arrow_array::RecordBatch;
use bytes::Bytes;
use rayon::prelude::*;

use crate::batch::{record_batch, BATCH_ROWS};
use crate::config::Location;
use crate::jsonpaths::JsonPaths;
use crate::parse::{parse_log_file, parse_song_file, ParsedFile, SourceKind};
use crate::progress::Progress;
use crate::record::{Reject, Row, UNREADABLE_FILE};
use crate::schema::Table;
use crate::schema::LOAD_ERRORS;
use crate::source::{Discovered, SourceFile};
use crate::stats::{FileYield, SourceStats, REJECTS_SHOWN};
use crate::warehouse::Warehouse;

/// A chunk is cut after this many bytes or files, whichever comes first; a local log file
/// larger than this is read in pieces of about this size.
const CHUNK_BYTES: u64 = 16 << 20;
const CHUNK_FILES: usize = 2048;
/// Chunks parsed ahead of the one being appended.
const CHUNKS_AHEAD: usize = 2;

/// What the reader hands the parser: some files with their contents (or why each could not be
/// read), or consecutive pieces of one large log file, as many as there are parse workers, so
/// that one large file is parsed on every core.
struct Fetched<'a> {
    /// The file of each of `contents` (for pieces, the same file each time).
    files: Vec<&'a SourceFile>,
    contents: Vec<Result<Bytes, String>>,
    /// For pieces, the lines of the file before the first byte of each piece.
    lines_before: Vec<u64>,
    /// Whether `contents` are pieces of a large log file (see [`read_in_pieces`]).
    piece: bool,
}

/// Sends the pieces read so far of `file` as one [`Fetched`]; false when the parser stopped.
fn send_pieces<'a>(
    sender: &mpsc::SyncSender<Fetched<'a>>,
    file: &'a SourceFile,
    pieces: &mut Vec<(Result<Bytes, String>, u64)>,
) -> bool {
    if pieces.is_empty() {
        return true;
    }
    let (contents, lines_before): (Vec<_>, Vec<_>) = pieces.drain(..).unzip();
    sender
        .send(Fetched {
            files: vec![file; contents.len()],
            contents,
            lines_before,
            piece: true,
        })
        .is_ok()
}

/// One parsed chunk, ready to append.
struct Chunk {
    batches: Vec<RecordBatch>,
    /// What each file (or piece of a file) of the chunk yielded, in order.
    yields: Vec<FileYield>,
    rejects: Vec<Reject>,
    /// Files that could not be read (only when the load may skip them).
    unreadable: Vec<Reject>,
}

/// Parses one file from its contents (see [`Discovered::read`]); a file that could not be read
/// gives the reason instead.
pub fn parse_file(
    file: &SourceFile,
    contents: &Result<Bytes, String>,
    kind: SourceKind,
    mapping: Option<&JsonPaths>,
) -> Result<ParsedFile, String> {
    let name = file.location.to_string();
    let bytes = contents.as_ref().map_err(Clone::clone)?;
    Ok(match (kind, mapping) {
        (SourceKind::Log, Some(mapping)) => parse_log_file(&name, bytes, mapping),
        (SourceKind::Log, None) => unreachable!("log files are parsed with a JSONPaths mapping"),
        (SourceKind::Song, _) => parse_song_file(&name, bytes),
    })
}

/// The entry of `load_errors` for a file that could not be read.
fn unreadable_file(kind: SourceKind, file: &SourceFile, error: &str) -> Reject {
    Reject {
        source: kind.name(),
        file: file.location.to_string(),
        line: None,
        reason: format!("{UNREADABLE_FILE}: {error}"),
        raw_text: String::new(),
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

/// Reads the local file `path` from byte `offset` (after `lines_before` lines) in pieces of
/// about `piece_bytes`, each ending at a line end (or the end of the file), handing each to
/// `send` with the number of lines before it in the file; stops when `send` returns false. A
/// read error is handed on as the last piece.
///
/// The file is read as [`crate::source::read_local`] reads one whole: opened without blocking,
/// only while a regular file, no further than the size `found` gave it; a size or modification
/// time that moved since, or an end that came early, ends it with "changed while it was read"
/// as the last piece (which fails the file, so nothing of it is kept).
fn read_in_pieces(
    path: &std::path::Path,
    found: &SourceFile,
    piece_bytes: usize,
    mut send: impl FnMut(Result<Bytes, String>, u64) -> bool,
) {
    let (offset, lines_before) = (found.offset, found.lines_before);
    let opened = crate::files::open_regular(path).and_then(|(mut file, metadata)| {
        file.seek(std::io::SeekFrom::Start(offset))?;
        Ok((file, metadata))
    });
    let mut file = match opened {
        Ok((_, metadata)) if found.differs_from(&metadata) => {
            send(
                Err(crate::files::changed_while_read(
                    found.size, &metadata, None,
                )),
                lines_before,
            );
            return;
        }
        Ok((file, _)) => file,
        Err(e) => {
            send(Err(e.to_string()), lines_before);
            return;
        }
    };
    // Never past the size found: a file that keeps growing (or a device) is not read on.
    let mut left = found.size.saturating_sub(offset);
    let mut lines_before = lines_before;
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut buffer = std::mem::take(&mut carry);
        buffer.reserve(piece_bytes);
        let mut at_end = false;
        // The carried tail holds no line end; each read is searched once, so a file without
        // line ends costs one pass, not one per read.
        let mut has_line_end = false;
        // Fill to the piece size, then on to the next line end.
        while buffer.len() < piece_bytes || !has_line_end {
            let want = if buffer.len() < piece_bytes {
                piece_bytes - buffer.len()
            } else {
                1 << 16 // a line longer than a piece: on to its end
            };
            let before = buffer.len();
            let want = (want as u64).min(left);
            if want == 0 {
                at_end = true;
                break;
            }
            match file.by_ref().take(want).read_to_end(&mut buffer) {
                Ok(0) => {
                    // The end came before the size found: the file was cut.
                    let read = found.size - left;
                    let now = file.metadata();
                    let message = match &now {
                        Ok(now) => crate::files::changed_while_read(found.size, now, Some(read)),
                        Err(e) => e.to_string(),
                    };
                    send(Err(message), lines_before);
                    return;
                }
                Ok(n) => {
                    left -= n as u64;
                    has_line_end = has_line_end || buffer[before..].contains(&b'\n');
                }
                Err(e) => {
                    send(Err(e.to_string()), lines_before);
                    return;
                }
            }
        }
        let cut = if at_end {
            buffer.len()
        } else {
            buffer
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(buffer.len(), |at| at + 1)
        };
        carry = buffer.split_off(cut);
        let lines = buffer.iter().filter(|&&b| b == b'\n').count() as u64;
        if !buffer.is_empty() && !send(Ok(Bytes::from(buffer)), lines_before) {
            return;
        }
        lines_before += lines;
        if at_end && carry.is_empty() {
            // Read to the size found: the file is that version only if it has not moved since.
            match file.metadata() {
                Ok(now) if found.differs_from(&now) => {
                    send(
                        Err(crate::files::changed_while_read(found.size, &now, None)),
                        lines_before,
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    send(Err(e.to_string()), lines_before);
                }
            }
            return;
        }
    }
}

/// Keeps the content hash of a local file read whole (see [`crate::source::content_digest`]);
/// a file read from an offset has its whole hash from the plan already.
fn record_digest(
    digests: &std::sync::Mutex<HashMap<String, String>>,
    file: &SourceFile,
    contents: &Result<Bytes, String>,
) {
    if let (Location::File(_), Ok(bytes), 0, None) =
        (&file.location, contents, file.offset, &file.digest)
    {
        let digest = crate::source::content_digest(bytes);
        digests
            .lock()
            .expect("no reader panicked")
            .insert(file.location.to_string(), digest);
    }
}

/// How a load treats files it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// The load fails, naming the file (the default: a lost file is lost data).
    Fail,
    /// The file is listed in the summary and in `load_errors`, and the load goes on.
    Skip,
}

/// Loads `files` (some or all of `discovered`'s) of one source into `target` (its staging
/// table, or the incoming table of an incremental load) and their rejects into `load_errors`.
/// Runs inside the caller's transaction. `mapping` is the JSONPaths file for logs.
#[allow(clippy::too_many_arguments)]
pub fn load_source(
    warehouse: &mut dyn Warehouse,
    kind: SourceKind,
    discovered: &Discovered,
    files: &[SourceFile],
    target: &Table,
    mapping: Option<&JsonPaths>,
    unreadable: Unreadable,
    progress: &Progress,
) -> Result<SourceStats> {
    // A large log's pieces go to the parser as many at a time as it has workers, each of
    // 1/workers of a chunk: the bytes in flight stay a chunk's, and a file larger than a piece
    // is parsed on every core (one piece at a time, it was parsed on one: a day's 15 MB file
    // of the 1M bench in 224 ms).
    let pieces_at_once = rayon::current_num_threads().clamp(1, 16);
    let piece_bytes = CHUNK_BYTES as usize / pieces_at_once;
    tracing::info!(source = kind.name(), root = %discovered.root, files = files.len(), "loading");
    let mut stats = SourceStats {
        source: kind.name(),
        files: files.len() as u64,
        bytes: files.iter().map(SourceFile::bytes_to_read).sum(),
        ..SourceStats::default()
    };
    let read_bar = progress.bytes(&format!("{} read", kind.name()), stats.bytes);
    // Counts records as each file is parsed (on the parse workers), so it moves file by file;
    // what the warehouse has taken so far is its message, updated after each chunk.
    let load_bar = progress.counter(&format!("{} load", kind.name()));
    load_bar.set_message("records read");

    // Content hashes of the local files read, by name, for the ledger (see crate::ledger).
    let digests = std::sync::Mutex::new(HashMap::<String, String>::new());
    let (fetched_sender, fetched) = mpsc::sync_channel::<Fetched>(1);
    let (sender, receiver) = mpsc::sync_channel::<Result<Chunk>>(CHUNKS_AHEAD);
    std::thread::scope(|scope| -> Result<()> {
        // Reading (for S3: fetching) the next chunk overlaps parsing this one.
        scope.spawn(move || {
            for files in chunks(files) {
                let large_log = match files {
                    [file]
                        if kind == SourceKind::Log
                            && file.bytes_to_read() > piece_bytes as u64
                            && file.unreadable.is_none() =>
                    {
                        match &file.location {
                            Location::File(path) => Some(path),
                            Location::S3 { .. } => None,
                        }
                    }
                    _ => None,
                };
                if let Some(path) = large_log {
                    let [file] = files else {
                        unreachable!("a large log is read alone")
                    };
                    let mut pieces = Vec::with_capacity(pieces_at_once);
                    let mut stopped = false;
                    read_in_pieces(path, file, piece_bytes, |piece, lines_before| {
                        pieces.push((piece, lines_before));
                        if pieces.len() >= pieces_at_once {
                            stopped = !send_pieces(&fetched_sender, file, &mut pieces);
                        }
                        !stopped
                    });
                    if stopped || !send_pieces(&fetched_sender, file, &mut pieces) {
                        return;
                    }
                    continue;
                }
                let contents = discovered.read(files, kind.max_file_bytes());
                let fetched = Fetched {
                    files: files.iter().collect(),
                    contents,
                    lines_before: Vec::new(),
                    piece: false,
                };
                if fetched_sender.send(fetched).is_err() {
                    return; // the parser stopped
                }
            }
        });
        let read_bar = read_bar.clone();
        let records_bar = load_bar.clone();
        let digests = &digests;
        scope.spawn(move || {
            // The hash of each large log read in pieces, fed piece by piece, in order.
            let mut piece_hashes: HashMap<String, sha2::Sha256> = HashMap::new();
            // The large files some pieces of which were parsed (and so staged).
            let mut pieces_staged: std::collections::HashSet<String> = Default::default();
            for fetched in fetched {
                let parsed: Vec<Result<ParsedFile, String>> = fetched
                    .files
                    .par_iter()
                    .zip(&fetched.contents)
                    .map(|(file, contents)| {
                        let clock = std::time::Instant::now();
                        if !fetched.piece {
                            record_digest(digests, file, contents);
                        }
                        let parsed = parse_file(file, contents, kind, mapping);
                        if let Ok(parsed) = &parsed {
                            records_bar.inc((parsed.rows.len() + parsed.rejects.len()) as u64);
                        }
                        // A piece of a large file counts its own bytes.
                        let bytes = contents.as_ref().map_or(file.size, |b| b.len() as u64);
                        read_bar.inc(bytes);
                        // -vv: each file (or piece of a large one) with its time.
                        tracing::debug!(
                            file = %file.location,
                            bytes,
                            ms = clock.elapsed().as_secs_f64() * 1e3,
                            "parsed"
                        );
                        parsed
                    })
                    .collect();
                if fetched.piece {
                    // In order: the pieces are consecutive.
                    for (file, contents) in fetched.files.iter().zip(&fetched.contents) {
                        if let Ok(bytes) = contents {
                            if matches!(file.location, Location::File(_)) && file.digest.is_none() {
                                use sha2::Digest;
                                piece_hashes
                                    .entry(file.location.to_string())
                                    .or_default()
                                    .update(bytes);
                            }
                        }
                    }
                }
                drop(fetched.contents);
                let mut rows = Vec::new();
                let mut yields = Vec::new();
                let mut rejects = Vec::new();
                let mut skipped = Vec::new();
                for (index, (file, parsed)) in fetched.files.iter().zip(parsed).enumerate() {
                    match parsed {
                        Ok(parsed) => {
                            if fetched.piece {
                                pieces_staged.insert(file.location.to_string());
                            }
                            yields.push(FileYield {
                                file: file.location.to_string(),
                                staged: Some(parsed.rows.len() as u64),
                                rejected: parsed.rejects.len() as u64,
                            });
                            rows.extend(parsed.rows);
                            // Pieces count the lines before them; a whole file (or what was
                            // appended to it) starts after the lines loaded before.
                            let before = if fetched.piece {
                                fetched.lines_before[index]
                            } else {
                                file.lines_before
                            };
                            rejects.extend(parsed.rejects.into_iter().map(|mut reject| {
                                reject.line = reject.line.map(|l| l + before);
                                reject
                            }));
                        }
                        // A large file that fails after some of its pieces were staged cannot
                        // be skipped: those rows are in staging already. The load stops, and
                        // its rollback takes them out.
                        Err(error)
                            if unreadable == Unreadable::Skip
                                && !(fetched.piece
                                    && pieces_staged.contains(&file.location.to_string())) =>
                        {
                            skipped.push(unreadable_file(kind, file, &error));
                        }
                        Err(error) => {
                            let _ = sender.send(Err(anyhow!(
                                "cannot read {}: {error}; nothing was committed: fix or remove \
                                 the file, or pass --skip-unreadable-files to load the rest and \
                                 list it in load_errors",
                                crate::record::escape_controls(&file.location.to_string())
                            )));
                            return;
                        }
                    }
                }
                let chunk = rows
                    .chunks(BATCH_ROWS)
                    .map(|rows| record_batch(kind.table(), rows))
                    .collect::<Result<Vec<_>>>()
                    .map(|batches| Chunk {
                        batches,
                        yields,
                        rejects,
                        unreadable: skipped,
                    });
                if sender.send(chunk).is_err() {
                    return; // the appender failed and stopped listening
                }
            }
            let mut digests = digests.lock().expect("no reader panicked");
            for (file, hash) in piece_hashes {
                use sha2::Digest;
                digests.insert(file, crate::source::digest_text(&hash.finalize()));
            }
        });
        for chunk in receiver {
            let chunk = chunk?;
            for batch in &chunk.batches {
                warehouse.append(target, batch)?;
                stats.staged += batch.num_rows() as u64;
            }
            if !chunk.rejects.is_empty() || !chunk.unreadable.is_empty() {
                let rows: Vec<Row> = chunk
                    .rejects
                    .iter()
                    .chain(&chunk.unreadable)
                    .map(Reject::to_row)
                    .collect();
                warehouse.append(&LOAD_ERRORS, &record_batch(&LOAD_ERRORS, &rows)?)?;
            }
            stats.rejected += chunk.rejects.len() as u64;
            let room = REJECTS_SHOWN.saturating_sub(stats.first_rejects.len());
            stats
                .first_rejects
                .extend(chunk.rejects.into_iter().take(room));
            stats.unreadable.extend(chunk.unreadable);
            for file in chunk.yields {
                // The pieces of a large file add up to one.
                match stats.yields.last_mut() {
                    Some(last) if last.file == file.file => {
                        last.staged = last.staged.zip(file.staged).map(|(a, b)| a + b);
                        last.rejected += file.rejected;
                    }
                    _ => stats.yields.push(file),
                }
            }
            load_bar.set_message(format!(
                "records read, {} staged",
                crate::words::thousands(stats.staged as i64)
            ));
        }
        Ok(())
    })?;
    stats.records = stats.staged + stats.rejected;
    stats.digests = digests.into_inner().expect("no reader panicked");
    for file in files {
        if let Some(digest) = &file.digest {
            stats
                .digests
                .insert(file.location.to_string(), digest.clone());
        }
    }
    read_bar.finish_and_clear();
    load_bar.finish_and_clear();
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;

    fn file(size: u64) -> SourceFile {
        SourceFile::found(Location::File("f.json".into()), size, String::new())
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

    /// `path` as discovery finds it now.
    fn found(path: &std::path::Path) -> SourceFile {
        let metadata = std::fs::metadata(path).unwrap();
        SourceFile::found(
            Location::File(path.to_path_buf()),
            metadata.len(),
            crate::files::version_of(&metadata),
        )
    }

    #[test]
    fn a_file_cut_or_grown_after_discovery_fails_as_changed_and_is_read_no_further() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let before = found(&path);
        // Cut to half after discovery.
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let mut last = None;
        read_in_pieces(&path, &before, 100, |piece, _| {
            last = Some(piece.clone());
            true
        });
        let err = last.unwrap().unwrap_err();
        assert!(err.contains("changed while it was read"), "{err}");
        // Grown after discovery: refused at open, nothing past the size found is read.
        std::fs::write(&path, format!("{text}{text}")).unwrap();
        let mut pieces = Vec::new();
        read_in_pieces(&path, &before, 100, |piece, _| {
            pieces.push(piece);
            true
        });
        assert_eq!(pieces.len(), 1);
        assert!(pieces[0]
            .as_ref()
            .unwrap_err()
            .contains("changed while it was read"));
    }

    #[test]
    fn pieces_end_at_line_ends_and_count_the_lines_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, format!("{text}no newline at the end")).unwrap();
        let mut pieces = Vec::new();
        read_in_pieces(&path, &found(&path), 100, |piece, before| {
            pieces.push((piece.unwrap(), before));
            true
        });
        assert!(pieces.len() > 50);
        let mut lines = 0;
        for (piece, before) in &pieces[..pieces.len() - 1] {
            assert!(piece.ends_with(b"\n"));
            assert_eq!(*before, lines);
            lines += piece.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        let joined: Vec<u8> = pieces.iter().flat_map(|(p, _)| p.to_vec()).collect();
        assert_eq!(joined, format!("{text}no newline at the end").into_bytes());
        // A file without line ends is one piece, read in one pass.
        let flat = dir.path().join("flat.json");
        std::fs::write(&flat, "x".repeat(10_000)).unwrap();
        let mut pieces = Vec::new();
        read_in_pieces(&flat, &found(&flat), 100, |piece, before| {
            pieces.push((piece.unwrap().len(), before));
            true
        });
        assert_eq!(pieces, [(10_000, 0)]);
        let mut missing = Vec::new();
        let gone = SourceFile::found(
            Location::File(dir.path().join("gone.json")),
            5,
            String::new(),
        );
        read_in_pieces(&dir.path().join("gone.json"), &gone, 100, |piece, _| {
            missing.push(piece);
            true
        });
        assert!(matches!(missing.as_slice(), [Err(_)]));
    }
}
