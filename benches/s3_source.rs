//! What reading the sources through the S3 client costs against reading them from disk: the
//! same generated dataset served by s3s-fs on loopback (so the network is not the limit) and
//! read through `Discovered::read`, listing included; then what `etl --coalesce` costs before
//! Redshift's COPY: the song files fetched and written back as parts to the same server. Run it
//! with `cargo bench --bench s3_source -- [--songs N] [--events N]`.

use std::time::Instant;

#[path = "../tests/common/s3_server.rs"]
mod s3_server;

use sparkify::config::{Location, S3Config};
use sparkify::gen_data::{generate, GenOptions};
use sparkify::s3::S3Store;
use sparkify::source::{discover, discover_dir, Discovered};
use sparkify::warehouse::coalesce::coalesce;

fn total(source: &Discovered) -> usize {
    source
        .read(&source.files, u64::MAX)
        .iter()
        .map(|contents| contents.as_ref().map(|b| b.len()).unwrap_or(0))
        .sum()
}

fn main() {
    let (mut songs, mut events) = (5_000usize, 200_000usize);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--songs" => songs = args[i + 1].parse().expect("--songs N"),
            "--events" => events = args[i + 1].parse().expect("--events N"),
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}: use --songs N --events N"),
        }
        i += 2;
    }
    let root = std::env::temp_dir().join(format!("sparkify-s3-bench-{songs}-{events}"));
    let data = root.join("bucket");
    if !data.join("log_json_path.json").exists() {
        eprintln!("generating {} ...", data.display());
        generate(&GenOptions {
            songs,
            events,
            days: 30,
            seed: 42,
            out: data.clone(),
            force: true,
        })
        .expect("generate dataset");
    }

    // The server of the S3 tests (its faults touch only keys named flaky or slow).
    let server = s3_server::Server::start(&root, false);
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let store = S3Store::connect(&S3Config {
        region: "us-east-1".into(),
        endpoint: Some(server.endpoint.clone()),
        attempt_timeout_seconds: 30,
        ..S3Config::default()
    })
    .unwrap();
    let hidden = indicatif::ProgressBar::hidden();

    let local: Vec<Discovered> = ["song_data", "log_data"]
        .iter()
        .map(|dir| discover_dir(&data.join(dir), "bench", &hidden).unwrap())
        .collect();
    let files: usize = local.iter().map(|d| d.files.len()).sum();
    let bytes: usize = local.iter().map(total).sum(); // also warms the page cache
    let start = Instant::now();
    local.iter().map(total).sum::<usize>();
    let disk_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let listed: Vec<Discovered> = ["song_data", "log_data"]
        .iter()
        .map(|prefix| {
            let location = Location::S3 {
                bucket: "bucket".into(),
                key: prefix.to_string(),
            };
            discover(&location, "bench", Some(&store), &hidden).unwrap()
        })
        .collect();
    let list_s = start.elapsed().as_secs_f64();
    let remote: usize = listed.iter().map(total).sum();
    let s3_s = start.elapsed().as_secs_f64();
    assert_eq!(remote, bytes, "S3 returned other bytes than the disk holds");

    // --coalesce: list the song files, fetch them, write them back to back as parts.
    let start = Instant::now();
    let objects = store
        .list("bucket", "song_data/", |_| true, "bench", &hidden)
        .unwrap();
    let prefix = Location::S3 {
        bucket: "bucket".into(),
        key: "coalesced/".into(),
    };
    let coalesced = coalesce(
        &store,
        "bucket",
        &objects,
        &prefix,
        &sparkify::schema::STAGING_SONGS,
        &hidden,
        &mut || Ok(()),
    )
    .unwrap();
    let coalesce_s = start.elapsed().as_secs_f64();
    assert!(
        coalesced.apart.is_empty(),
        "every generated song file is whole JSON"
    );

    let mib = bytes as f64 / (1 << 20) as f64;
    println!("{files} files, {mib:.0} MiB");
    println!(
        "disk             {disk_s:6.2} s  {:7.0} MiB/s",
        mib / disk_s
    );
    println!(
        "S3 (s3s-fs, loopback) {s3_s:6.2} s  {:7.0} MiB/s  {:6.0} objects/s (listing {list_s:.2} s)",
        mib / s3_s,
        files as f64 / s3_s
    );
    println!(
        "coalesce {} song files into {} parts (list, fetch, write) {coalesce_s:6.2} s",
        coalesced.files,
        coalesced.parts.len()
    );
}
