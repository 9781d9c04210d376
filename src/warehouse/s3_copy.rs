//! Redshift's own load of staging: `COPY ... FROM 's3://...'` of both sources with the role of
//! `[IAM_ROLE]`, shared by the redshift and redshift-data engines. It reads exactly the objects
//! the local engines read (every `.json` object under the source prefix, not the JSONPaths
//! file), through a manifest when other objects share the prefix; it accounts for every record
//! COPY skipped, from the SYS views that Serverless and provisioned clusters both have.

use anyhow::{anyhow, bail, ensure, Context, Result};
use indicatif::ProgressBar;

use super::coalesce::{coalesce, Coalesced};
use super::{Cell, Warehouse};
use crate::config::{Config, Location};
use crate::parse::SourceKind;
use crate::progress::Progress;
use crate::record::Reject;
use crate::s3::{ensure_found, Object, S3Store};
use crate::schema::Table;
use crate::source::{is_json_name, SourceFile};
use crate::sql::{self, S3Copy};
use crate::stats::{FileYield, SourceStats, REJECTS_SHOWN};

/// How the objects under each source prefix are known.
#[derive(Clone, Copy)]
pub enum Listing<'a> {
    /// Listed in S3 now (a real run).
    Live(&'a S3Store),
    /// Not listed: `--print-sql` shows the COPY by prefix and says what listing would change.
    Offline,
}

/// What one load of staging by Redshift's COPY reads, and into which tables.
#[derive(Debug, Clone, Copy)]
pub struct S3Load<'a> {
    /// Rejected records tolerated (`[WAREHOUSE] MAX_ERRORS`).
    pub max_errors: u64,
    /// The tables the COPYs fill: songs, then events (the staging tables, or the incoming
    /// ones of an incremental load).
    pub targets: [&'static Table; 2],
    /// Exactly the files to COPY, songs then logs, as the ledger's plan chose them (see
    /// [`crate::ledger::plan`]), through a manifest under `[S3] MANIFEST_PREFIX`; a source with
    /// none is not copied. `None`: every `.json` object under the source prefixes, as listed
    /// now.
    pub files: Option<[&'a [SourceFile]; 2]>,
}

impl S3Load<'_> {
    /// Every `.json` object under the prefixes into the staging tables.
    pub fn everything(max_errors: u64) -> S3Load<'static> {
        S3Load {
            max_errors,
            targets: [SourceKind::Song.table(), SourceKind::Log.table()],
            files: None,
        }
    }
}

/// A manifest COPY reads instead of a prefix: the exact objects to load
/// (https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub location: Location,
    /// The manifest's JSON.
    pub body: String,
    pub entries: usize,
}

impl Manifest {
    /// A manifest at `location` whose entries coalescing will fill in (see
    /// [`coalesce_sources`]).
    fn to_fill(location: Location) -> Manifest {
        Manifest {
            location,
            body: String::new(),
            entries: 0,
        }
    }
}

/// The COPY of one source, as planned.
#[derive(Debug, Clone)]
pub struct PlannedCopy {
    pub kind: SourceKind,
    /// The table it fills.
    pub table: &'static Table,
    /// The `[S3]` key of the source, for messages.
    pub setting: &'static str,
    /// The source prefix (ending in `/`).
    pub source: Location,
    /// Written before the COPY, which then reads it instead of the prefix.
    pub manifest: Option<Manifest>,
    /// A comment for `--print-sql` where the plan depends on what S3 holds.
    pub note: Option<String>,
    /// With `--coalesce`, in a real run: the source's `.json` data objects, to be coalesced
    /// into parts before the COPY (see [`coalesce_sources`]).
    pub to_coalesce: Option<Vec<Object>>,
    /// What coalescing made, once done: the parts the manifest lists, and where their lines
    /// came from.
    pub coalesced: Option<Coalesced>,
}

impl PlannedCopy {
    /// The COPY of `source` by its prefix, with nothing more to do before it.
    fn new(
        kind: SourceKind,
        table: &'static Table,
        setting: &'static str,
        source: Location,
    ) -> PlannedCopy {
        PlannedCopy {
            kind,
            table,
            setting,
            source,
            manifest: None,
            note: None,
            to_coalesce: None,
            coalesced: None,
        }
    }

    /// The URI after COPY's FROM.
    pub fn from(&self) -> String {
        match &self.manifest {
            Some(manifest) => manifest.location.to_string(),
            None => self.source.to_string(),
        }
    }
}

/// Where the manifest of `table` goes under `[S3] MANIFEST_PREFIX` (one per table, rewritten
/// by every run).
fn manifest_location(prefix: &Location, table: &Table) -> Location {
    prefix.child(&format!("sparkify-{}.manifest", table.name))
}

/// Plans the COPY of both sources (songs, then events). A COPY by prefix reads every object
/// whose key starts with it
/// (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-source-s3.html), so when
/// the prefix holds anything but `.json` objects (a README, a `_SUCCESS` marker, the JSONPaths
/// file), the COPY goes through a manifest listing exactly the `.json` data objects, written
/// under `[S3] MANIFEST_PREFIX`; without that setting the run is refused before it starts.
///
/// With `[S3] COALESCE` (`etl --coalesce`), every source is COPYed through a manifest of the
/// parts its small objects are coalesced into (see [`super::coalesce`]), which needs
/// `MANIFEST_PREFIX` outside both source prefixes (a part under a source prefix would be read
/// as a source by the next run).
///
/// Where `load` names the files (a load the ledger planned), nothing is listed: each source's
/// COPY reads exactly those through a manifest (coalesced first with `COALESCE`), and a source
/// with no file is not copied at all.
pub fn plan_copies(config: &Config, listing: Listing, load: &S3Load) -> Result<Vec<PlannedCopy>> {
    let s3 = config.s3_sources()?;
    let manifest_prefix = config.manifest_prefix()?;
    let jsonpaths = s3.log_jsonpath.clone();
    if config.s3.coalesce {
        check_coalesce_prefix(
            config,
            manifest_prefix.as_ref(),
            &[&s3.song_data, &s3.log_data],
        )?;
    }
    let mut planned = Vec::new();
    for (index, kind, setting, source) in [
        (0, SourceKind::Song, "SONG_DATA", s3.song_data),
        (1, SourceKind::Log, "LOG_DATA", s3.log_data),
    ] {
        let table = load.targets[index];
        let Location::S3 { bucket, key } = &source else {
            unreachable!("s3_sources holds only S3 locations");
        };
        if let Some(files) = load.files {
            if let Some(copy) = plan_chosen(
                config,
                manifest_prefix.as_ref(),
                PlannedCopy::new(kind, table, setting, source.clone()),
                files[index],
            )? {
                planned.push(copy);
            }
            continue;
        }
        let store = match (listing, &manifest_prefix) {
            (Listing::Offline, Some(prefix)) if config.s3.coalesce => {
                let location = manifest_location(prefix, table);
                let note = format!(
                    "-- --coalesce: etl first fetches the .json objects under {source} smaller \
                     than 1 MiB and writes them back to back into a few parts \
                     {prefix}sparkify-{}-part-NNNNN.json; this COPY reads the parts (and any \
                     larger or malformed object as itself) through the manifest {location}",
                    table.name
                );
                planned.push(PlannedCopy {
                    note: Some(note),
                    manifest: Some(Manifest::to_fill(location)),
                    ..PlannedCopy::new(kind, table, setting, source)
                });
                continue;
            }
            (Listing::Offline, _) => {
                let fallback = match &manifest_prefix {
                    Some(prefix) => format!(
                        "a manifest of exactly those, {}",
                        manifest_location(prefix, table)
                    ),
                    None => "a manifest, which needs [S3] MANIFEST_PREFIX".into(),
                };
                let note = format!(
                    "-- etl lists {source} first: if anything but .json data objects is there, \
                     this COPY reads {fallback}"
                );
                planned.push(PlannedCopy {
                    note: Some(note),
                    ..PlannedCopy::new(kind, table, setting, source)
                });
                continue;
            }
            (Listing::Live(store), _) => store,
        };
        let name = format!("[S3] {setting}");
        let objects = store.list(bucket, key, |_| true, &name, &ProgressBar::hidden())?;
        let is_data = |object: &Object| {
            is_json_name(&object.key)
                && !matches!(&jsonpaths, Location::S3 { bucket: b, key: k } if b == bucket && *k == object.key)
        };
        let data: Vec<&Object> = objects.iter().filter(|o| is_data(o)).collect();
        ensure_found(data.len(), &name, bucket, key)?;
        if let (true, Some(prefix)) = (config.s3.coalesce, &manifest_prefix) {
            planned.push(PlannedCopy {
                manifest: Some(Manifest::to_fill(manifest_location(prefix, table))),
                to_coalesce: Some(data.into_iter().cloned().collect()),
                ..PlannedCopy::new(kind, table, setting, source)
            });
            continue;
        }
        let manifest = if data.len() == objects.len() {
            None
        } else {
            let others: Vec<&str> = objects
                .iter()
                .filter(|o| !is_data(o))
                .map(|o| o.key.as_str())
                .take(3)
                .collect();
            let Some(prefix) = &manifest_prefix else {
                bail!(
                    "{name} = {source} also holds {} not .json data (such as \
                     {}), which Redshift's COPY of the prefix would load as records: set [S3] \
                     MANIFEST_PREFIX to an s3:// prefix you may write and the IAM role may read, \
                     and etl will COPY through a manifest of exactly the .json objects",
                    crate::words::counted(
                        objects.len() - data.len(),
                        "object that is",
                        "objects that are"
                    ),
                    others.join(", ")
                );
            };
            Some(Manifest {
                location: manifest_location(prefix, table),
                body: manifest_body(data.iter().map(|o| format!("s3://{bucket}/{}", o.key))),
                entries: data.len(),
            })
        };
        planned.push(PlannedCopy {
            manifest,
            ..PlannedCopy::new(kind, table, setting, source)
        });
    }
    Ok(planned)
}

/// The COPY of exactly `files` (none: no COPY), through a manifest under `prefix`, of the
/// files themselves or, with `[S3] COALESCE`, of the parts they are coalesced into. A manifest
/// lists objects by URL, each in its bucket, so files of the ledger's plan need no listing
/// (https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html).
fn plan_chosen(
    config: &Config,
    prefix: Option<&Location>,
    copy: PlannedCopy,
    files: &[SourceFile],
) -> Result<Option<PlannedCopy>> {
    if files.is_empty() {
        return Ok(None);
    }
    let Some(prefix) = prefix else {
        bail!(
            "{}: COPY of chosen files needs [S3] MANIFEST_PREFIX, which is empty",
            config.path.display()
        );
    };
    let location = manifest_location(prefix, copy.table);
    let objects: Vec<Object> = files
        .iter()
        .filter_map(|file| match &file.location {
            Location::S3 { key, .. } => Some(Object {
                key: key.clone(),
                size: file.size,
                etag: file.version.clone(),
            }),
            Location::File(_) => None,
        })
        .collect();
    ensure!(
        objects.len() == files.len(),
        "{}: the files to COPY must all be in S3",
        config.path.display()
    );
    if config.s3.coalesce {
        return Ok(Some(PlannedCopy {
            manifest: Some(Manifest::to_fill(location)),
            to_coalesce: Some(objects),
            ..copy
        }));
    }
    let urls = files.iter().map(|file| file.location.to_string());
    Ok(Some(PlannedCopy {
        manifest: Some(Manifest {
            location,
            body: manifest_body(urls),
            entries: files.len(),
        }),
        ..copy
    }))
}

/// A COPY manifest listing `urls`, each mandatory: COPY fails if one is missing
/// (https://docs.aws.amazon.com/redshift/latest/dg/loading-data-files-using-manifest.html).
fn manifest_body(urls: impl Iterator<Item = String>) -> String {
    let entries: Vec<serde_json::Value> = urls
        .map(|url| serde_json::json!({"url": url, "mandatory": true}))
        .collect();
    serde_json::json!({ "entries": entries }).to_string()
}

/// `--coalesce` writes its parts under `[S3] MANIFEST_PREFIX`, which must be set and lie
/// outside the source prefixes.
fn check_coalesce_prefix(
    config: &Config,
    prefix: Option<&Location>,
    sources: &[&Location],
) -> Result<()> {
    let Some(prefix) = prefix else {
        bail!(
            "{}: --coalesce (or [S3] COALESCE) writes the coalesced sources under [S3] \
             MANIFEST_PREFIX, which is empty: set it to an s3:// prefix you may write and the IAM \
             role may read, outside the source prefixes",
            config.path.display()
        );
    };
    if let Some(source) = sources.iter().find(|source| prefix.is_under(source)) {
        bail!(
            "{}: [S3] MANIFEST_PREFIX = {prefix} lies under the source prefix {source}: the \
             coalesced parts would be read as sources by the next run; choose a prefix outside \
             both sources",
            config.path.display()
        );
    }
    Ok(())
}

/// Coalesces the sources planned for it (see [`super::coalesce`]) and fills in their
/// manifests: the parts, then the objects kept apart.
pub fn coalesce_sources(
    store: &S3Store,
    config: &Config,
    planned: &mut [PlannedCopy],
    progress: &Progress,
    tick: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let Some(prefix) = config.manifest_prefix()? else {
        return Ok(());
    };
    for copy in planned.iter_mut() {
        let Some(objects) = copy.to_coalesce.take() else {
            continue;
        };
        let Location::S3 { bucket, .. } = &copy.source else {
            unreachable!("s3_sources holds only S3 locations");
        };
        let bar = progress.items(&format!("coalesce {}", copy.kind.name()), 0);
        let coalesced = coalesce(store, bucket, &objects, &prefix, copy.table, &bar, tick)?;
        bar.finish_and_clear();
        let urls = coalesced.manifest_urls();
        tracing::info!(
            source = copy.kind.name(),
            files = coalesced.files,
            parts = coalesced.parts.len(),
            apart = coalesced.apart.len(),
            "coalesced"
        );
        let manifest = copy
            .manifest
            .as_mut()
            .expect("a coalesced source has a manifest");
        manifest.entries = urls.len();
        manifest.body = manifest_body(urls.into_iter());
        copy.coalesced = Some(coalesced);
    }
    Ok(())
}

/// Refuses, before anything is written there, a `[S3] MANIFEST_PREFIX` bucket outside
/// `[S3] REGION`: with REGION, COPY requires "all resources, including a manifest file", in
/// that region
/// (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-data-source-s3.html#copy-region),
/// and would fail only after the parts and manifests were written.
pub fn check_manifest_region(
    store: &S3Store,
    config: &Config,
    planned: &[PlannedCopy],
) -> Result<()> {
    let expected = config.s3.region.trim();
    if expected.is_empty() {
        return Ok(());
    }
    let mut checked: Vec<&str> = Vec::new();
    for copy in planned {
        let Some(manifest) = &copy.manifest else {
            continue;
        };
        let Location::S3 { bucket, .. } = &manifest.location else {
            continue;
        };
        if checked.contains(&bucket.as_str()) {
            continue;
        }
        checked.push(bucket);
        let region = store.bucket_region(bucket);
        if let Some(region) = region.filter(|r| !r.eq_ignore_ascii_case(expected)) {
            bail!(
                "{}: [S3] MANIFEST_PREFIX bucket {bucket} is in {region}, but COPY reads with \
                 REGION '{expected}' ([S3] REGION), which requires the manifests in that region \
                 too: use a bucket in {expected} for MANIFEST_PREFIX; nothing was written",
                config.path.display()
            );
        }
    }
    Ok(())
}

/// Writes the manifests of the planned COPYs.
pub fn write_manifests(store: &S3Store, planned: &[PlannedCopy]) -> Result<()> {
    for copy in planned {
        let Some(manifest) = &copy.manifest else {
            continue;
        };
        let Location::S3 { bucket, key } = &manifest.location else {
            unreachable!("manifests are S3 objects");
        };
        store
            .put(bucket, key, manifest.body.clone().into_bytes())
            .map_err(|e| {
                anyhow!(
                    "[S3] MANIFEST_PREFIX: cannot write the manifest {}: {e}: the AWS credentials \
                     in use need s3:PutObject there",
                    manifest.location
                )
            })?;
        tracing::info!(manifest = %manifest.location, entries = manifest.entries, "manifest written");
    }
    Ok(())
}

/// Refuses, before anything is listed or sent, the settings no COPY can run with: no role,
/// or more rejects tolerated than MAXERROR can express.
pub fn check_copy_settings(config: &Config, max_errors: u64) -> Result<()> {
    if config.iam_role_arn.is_empty() {
        bail!(
            "{}: [IAM_ROLE] ARN is empty: Redshift's COPY needs a role it can assume to read \
             the [S3] bucket: run iac_create, or set ARN to such a role",
            config.path.display()
        );
    }
    sql::redshift_maxerror(max_errors)
        .map_err(|e| anyhow!("{}: [WAREHOUSE] MAX_ERRORS: {e}", config.path.display()))?;
    Ok(())
}

/// [`copy_staging_from_s3`] for a real run: the sources are listed in S3 now, with the `[S3]`
/// settings.
pub fn copy_staging_listed_now(
    warehouse: &mut dyn Warehouse,
    config: &Config,
    load: &S3Load,
    raw_lines: bool,
    progress: &Progress,
) -> Result<Vec<SourceStats>> {
    let store = S3Store::connect_as(&config.s3, &config.aws)?;
    copy_staging_from_s3(
        warehouse,
        config,
        load,
        raw_lines,
        Listing::Live(&store),
        progress,
    )
}

/// Redshift's own COPY of both sources from `[S3]` with the role of `[IAM_ROLE]`, into the
/// emptied tables `load` names, inside the caller's transaction. The records each COPY skipped
/// (fewer than its MAXERROR) are read back into `load_errors`; a COPY that fails shows them.
/// `raw_lines` says whether the target keeps `stl_load_errors` (a provisioned cluster), which
/// adds the raw text of each skipped record. Returns what each source yielded, songs then
/// logs; where `load` named the files, with a yield for each file (its records skipped; the
/// records staged are counted per COPY, not per file).
pub fn copy_staging_from_s3(
    warehouse: &mut dyn Warehouse,
    config: &Config,
    load: &S3Load,
    raw_lines: bool,
    listing: Listing,
    progress: &Progress,
) -> Result<Vec<SourceStats>> {
    let max_errors = load.max_errors;
    let role = if config.iam_role_arn.is_empty() && matches!(listing, Listing::Offline) {
        // --print-sql before iac_create: the statements, with the role still to be named.
        "<[IAM_ROLE] ARN, written by iac_create>"
    } else {
        check_copy_settings(config, max_errors)?;
        config.iam_role_arn.as_str()
    };
    let jsonpaths = config.s3_sources()?.log_jsonpath.to_string();
    let mut planned = plan_copies(config, listing, load)?;
    // Each S3 step sends the warehouse nothing for as long as it takes: the session is kept
    // alive between them (see Warehouse::keep_alive).
    warehouse.keep_alive()?;
    if let Listing::Live(store) = listing {
        check_manifest_region(store, config, &planned)?;
        coalesce_sources(store, config, &mut planned, progress, &mut || {
            warehouse.keep_alive()
        })?;
        warehouse.keep_alive()?;
        write_manifests(store, &planned)?;
        warehouse.keep_alive()?;
    }
    let bar = progress.items("copy", planned.len() as u64);
    let mut all = Vec::new();
    for copy in &planned {
        let table = copy.table;
        let json = match copy.kind {
            SourceKind::Song => "auto ignorecase",
            SourceKind::Log => jsonpaths.as_str(),
        };
        let from = copy.from();
        let statement = sql::copy_from_s3(&S3Copy {
            table,
            from: &from,
            manifest: copy.manifest.is_some(),
            iam_role: role,
            json,
            region: &config.s3.region,
            max_errors,
        })
        .map_err(|e| {
            anyhow!(
                "{}: a value of [S3] or [IAM_ROLE] cannot be used: {e}",
                config.path.display()
            )
        })?;
        bar.set_message(table.name);
        tracing::info!(table = table.name, %from, "Redshift COPY");
        if let Some(note) = &copy.note {
            warehouse.note(note);
        }
        if let Err(error) = warehouse.execute(&statement) {
            // The failed COPY aborted the transaction, which refuses every statement until it
            // is rolled back; the COPY's rows in the SYS views outlive the rollback.
            let _ = warehouse.rollback();
            let shown = match copy_outcome(warehouse, table, false)
                .and_then(|outcome| skipped_records(warehouse, copy.kind, &outcome, false))
            {
                Ok(rejects) if !rejects.is_empty() => rejects
                    .iter()
                    .take(20)
                    .map(|r| format!("  {}", r.one_line()))
                    .collect::<Vec<_>>()
                    .join("\n"),
                Ok(_) => {
                    "  (Redshift recorded none: the COPY failed before reading records)".into()
                }
                Err(e) => format!(
                    "  (cannot read them: {e:#}; see sys_load_history and sys_load_error_detail \
                     for this session)"
                ),
            };
            return Err(error.context(format!(
                "Redshift's COPY of [S3] {} = {} into {} failed; nothing was committed. \
                 Load errors:\n{shown}\nFix the input, or raise [WAREHOUSE] MAX_ERRORS (or pass \
                 --max-errors) to skip bad records and keep them in load_errors",
                copy.setting, copy.source, table.name
            )));
        }
        let out_of_range = reject_unloadable(warehouse, copy.kind, table, &from)?;
        if let Listing::Offline = listing {
            // What follows depends on the COPY's id and its errors, known only in a real run.
            warehouse.query(&sql::redshift_copy_outcome(table))?;
            warehouse.note("-- then, with the query_id that row gives:");
            warehouse.query(&sql::redshift_load_errors("<query_id of the row above>"))?;
            if raw_lines {
                warehouse.query(sql::REDSHIFT_RAW_LINES)?;
            }
            warehouse.note(
                "-- and for the records COPY skipped, if any: INSERT INTO load_errors (source, \
                 file, line, reason, raw_text) VALUES (...), in statements of at most 64 KiB",
            );
            all.push(SourceStats {
                source: copy.kind.name(),
                read_by_warehouse: true,
                ..SourceStats::default()
            });
            continue;
        }
        let outcome = copy_outcome(warehouse, table, true)?;
        let mut rejects = skipped_records(warehouse, copy.kind, &outcome, true)?;
        // The views keep a file's first 256 bytes: a longer S3 URL is given back whole.
        let source_index = match copy.kind {
            SourceKind::Song => 0,
            SourceKind::Log => 1,
        };
        let read: Vec<String> = load
            .files
            .map_or(&[][..], |files| files[source_index])
            .iter()
            .map(|file| file.location.to_string())
            .chain(copy.coalesced.iter().flat_map(|c| c.manifest_urls()))
            .collect();
        for reject in &mut rejects {
            if let Some(full) = full_file_name(&reject.file, &read) {
                reject.file = full;
            }
        }
        if raw_lines && !rejects.is_empty() {
            add_raw_lines(warehouse, &mut rejects)?;
        }
        if let Some(coalesced) = &copy.coalesced {
            for reject in &mut rejects {
                if let Some((file, line)) = reject
                    .line
                    .and_then(|line| coalesced.origin(&reject.file, line))
                {
                    reject.file = file;
                    reject.line = Some(line);
                }
            }
        }
        for statement in sql::insert_rejects_redshift(&rejects) {
            warehouse.execute(&statement)?;
        }
        let rejected = rejects.len() as u64 + out_of_range;
        let chosen = load.files.map_or(&[][..], |files| files[source_index]);
        // Each file COPY read, with the records it skipped there (times out of range are
        // known per COPY only: their load_errors rows name the manifest).
        let yields = chosen
            .iter()
            .map(|file| {
                let name = file.location.to_string();
                FileYield {
                    rejected: rejects.iter().filter(|r| r.file == name).count() as u64,
                    file: name,
                    staged: None,
                }
            })
            .collect();
        all.push(SourceStats {
            source: copy.kind.name(),
            files: match (&copy.coalesced, &copy.manifest) {
                (Some(coalesced), _) => coalesced.files,
                (None, Some(manifest)) => manifest.entries as u64,
                (None, None) => 0,
            },
            bytes: match &copy.coalesced {
                Some(coalesced) => coalesced.bytes,
                None => chosen.iter().map(|file| file.size).sum(),
            },
            records: outcome.loaded_rows + rejects.len() as u64,
            staged: outcome.loaded_rows - out_of_range,
            rejected,
            first_rejects: rejects.into_iter().take(REJECTS_SHOWN).collect(),
            unreadable: Vec::new(),
            read_by_warehouse: true,
            yields,
            // S3 objects are known by their ETag.
            digests: Default::default(),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    // A source with nothing to copy staged nothing.
    for kind in [SourceKind::Song, SourceKind::Log] {
        if !all.iter().any(|stats| stats.source == kind.name()) {
            all.push(SourceStats {
                source: kind.name(),
                read_by_warehouse: true,
                ..SourceStats::default()
            });
        }
    }
    all.sort_by_key(|stats| stats.source != SourceKind::Song.name());
    Ok(all)
}

/// Moves the staged records the local loader would have rejected into `load_errors` (see
/// [`sql::redshift_reject_unloadable`]); returns how many.
fn reject_unloadable(
    warehouse: &mut dyn Warehouse,
    kind: SourceKind,
    table: &Table,
    from: &str,
) -> Result<u64> {
    let [count, insert, delete] = sql::redshift_reject_unloadable(table, kind.name(), from)
        .map_err(|e| anyhow!("the COPY source {from} cannot be named in SQL: {e}"))?;
    let found = warehouse
        .query(&count)?
        .expect_int("the count of staged records the local loader would reject")?;
    warehouse.execute(&insert)?;
    warehouse.execute(&delete)?;
    Ok(found as u64)
}

/// What Redshift recorded of one COPY in `sys_load_history`.
#[derive(Debug, Clone, PartialEq)]
struct CopyOutcome {
    table: &'static str,
    query_id: i64,
    loaded_rows: u64,
    error_count: u64,
}

/// The whole URL of the file a SYS view names by its first 256 bytes (`file_name` is
/// `character(256)`:
/// https://docs.aws.amazon.com/redshift/latest/dg/SYS_LOAD_ERROR_DETAIL.html), among the
/// files the COPY read; `None` when the name is whole already, or matches no file or several.
fn full_file_name(reported: &str, read: &[String]) -> Option<String> {
    const KEPT: usize = 256;
    if read.iter().any(|file| file == reported) {
        return None;
    }
    let mut cut_to_it = read.iter().filter(|file| {
        file.len() > KEPT && file.as_bytes()[..KEPT].trim_ascii_end() == reported.as_bytes()
    });
    match (cut_to_it.next(), cut_to_it.next()) {
        (Some(one), None) => Some(one.clone()),
        _ => None,
    }
}

/// How long a COPY that returned may still read as `running` (or be missing) in
/// `sys_load_history` before the run gives up on it.
const HISTORY_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The newest COPY into `table` of this session (see [`sql::redshift_copy_outcome`]). For a
/// COPY that returned (`finished`), its row must say `completed`: the view "contains both
/// running and finished COPY commands" (its valid statuses are running, completed and aborted:
/// https://docs.aws.amazon.com/redshift/latest/dg/SYS_LOAD_HISTORY.html), and system views are
/// filled apart from the tables, so a row not yet there or still `running` is asked again,
/// backing off, for up to [`HISTORY_WAIT`]: a good load never fails for reading it too soon.
/// For a COPY that failed, whatever row there is.
fn copy_outcome(
    warehouse: &mut dyn Warehouse,
    table: &'static Table,
    finished: bool,
) -> Result<CopyOutcome> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(100);
    let row = loop {
        let result = warehouse.query(&sql::redshift_copy_outcome(table))?;
        let row = result.rows.into_iter().next();
        let status = row
            .as_ref()
            .and_then(|r| r.get(3))
            .map(|c| c.to_string().trim().to_ascii_lowercase())
            .unwrap_or_default();
        match (&row, status.as_str()) {
            _ if !finished => break row,
            (Some(_), "completed") => break row,
            (Some(_), "aborted") => bail!(
                "sys_load_history records the COPY into {} as aborted though it returned \
                 without error; nothing was committed: run etl again",
                table.name
            ),
            _ if started.elapsed() >= HISTORY_WAIT => {
                bail!(
                    "sys_load_history still {} the COPY into {} {} s after it returned, so its \
                     skipped records cannot be accounted for; nothing was committed: run etl \
                     again",
                    if row.is_none() {
                        "holds no row for".to_string()
                    } else {
                        format!("shows {status:?} for")
                    },
                    table.name,
                    HISTORY_WAIT.as_secs()
                )
            }
            _ => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_secs(2));
            }
        }
    };
    let row = row.ok_or_else(|| {
        anyhow!(
            "Redshift recorded no COPY into {} for this session in sys_load_history, so its \
             skipped records cannot be accounted for; nothing was committed",
            table.name
        )
    })?;
    let int = |index: usize, what: &str| match row.get(index) {
        Some(Cell::Int(value)) => Ok(*value),
        other => Err(anyhow!(
            "sys_load_history gave {other:?} as the {what} of the COPY into {}, not a number",
            table.name
        )),
    };
    let count = |index: usize, what: &str| {
        int(index, what).and_then(|n| u64::try_from(n).with_context(|| format!("{what} is {n}")))
    };
    Ok(CopyOutcome {
        table: table.name,
        query_id: int(0, "query id")?,
        loaded_rows: count(1, "rows loaded")?,
        error_count: count(2, "error count")?,
    })
}

/// The records a COPY skipped, from `sys_load_error_detail`. With `complete`, they must be as
/// many as its `error_count` says: a skipped record is never left unrecorded.
fn skipped_records(
    warehouse: &mut dyn Warehouse,
    kind: SourceKind,
    outcome: &CopyOutcome,
    complete: bool,
) -> Result<Vec<Reject>> {
    let result = warehouse.query(&sql::redshift_load_errors(outcome.query_id))?;
    // Columns: file, line, column, reason (see the query).
    let rejects: Vec<Reject> = result
        .rows
        .iter()
        .map(|row| {
            let text = |index: usize| row.get(index).map(Cell::to_string).unwrap_or_default();
            let line = match row.get(1) {
                Some(Cell::Int(line)) => u64::try_from(*line).ok(),
                _ => None,
            };
            // COPY names the line a JSON record ends on: for a song file, whose one object may
            // span many lines, that is said, so the line is not taken for where it starts.
            let ending = match (kind, line) {
                (SourceKind::Song, Some(line)) => format!("record ending at line {line}: "),
                _ => String::new(),
            };
            Reject {
                source: kind.name(),
                file: text(0),
                line,
                reason: format!("{ending}{}: {}", text(2), text(3)),
                raw_text: String::new(),
            }
        })
        .collect();
    ensure!(
        !complete || rejects.len() as u64 == outcome.error_count,
        "Redshift's COPY into {} (query {}) counted {} in sys_load_history but \
         sys_load_error_detail holds {}; so that no skipped record goes unrecorded, nothing was \
         committed",
        outcome.table,
        outcome.query_id,
        crate::words::counted(outcome.error_count, "error", "errors"),
        rejects.len()
    );
    Ok(rejects)
}

/// Adds the raw text of each skipped record from `stl_load_errors` (provisioned clusters only).
fn add_raw_lines(warehouse: &mut dyn Warehouse, rejects: &mut [Reject]) -> Result<()> {
    let result = warehouse.query(sql::REDSHIFT_RAW_LINES)?;
    for row in &result.rows {
        let (Some(file), Some(Cell::Int(line)), Some(raw)) = (row.first(), row.get(1), row.get(2))
        else {
            continue;
        };
        let file = file.to_string();
        for reject in rejects
            .iter_mut()
            .filter(|r| r.file == file && r.line == u64::try_from(*line).ok())
        {
            reject.raw_text = raw.to_string();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::full_file_name;

    #[test]
    fn a_file_name_cut_to_256_bytes_by_the_views_is_given_back_whole() {
        let long = format!("s3://bucket/{}/events.json", "deep/".repeat(60));
        let other = format!("s3://bucket/{}/other.json", "deep/".repeat(60));
        let short = "s3://bucket/log_data/a.json".to_string();
        let read = vec![long.clone(), short.clone()];
        let cut = long[..256].to_string();
        assert_eq!(full_file_name(&cut, &read), Some(long.clone()));
        assert_eq!(full_file_name(&short, &read), None, "whole already");
        // Two files that share their first 256 bytes cannot be told apart.
        assert_eq!(full_file_name(&cut, &[long, other]), None);
        assert_eq!(full_file_name("s3://elsewhere/x.json", &read), None);
    }
}
