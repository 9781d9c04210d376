//! The unit tests of reading `dwh.cfg`.

use super::*;

#[test]
fn a_schema_is_a_plain_lower_case_name() {
    for good in ["sparkify", "_w", "dwh_2026"] {
        assert!(is_plain_schema_name(good), "{good}");
    }
    let long = "a".repeat(64);
    for bad in [
        "",
        "Sparkify",
        "2dwh",
        "a-b",
        "a b",
        "a\"b",
        "pg_temp",
        long.as_str(),
    ] {
        assert!(!is_plain_schema_name(bad), "{bad}");
    }
}

fn parse(text: &str) -> Result<Config> {
    Config::parse(text, Path::new("dwh.cfg"), Path::new("/base"))
}

#[test]
fn empty_file_gives_defaults() {
    let config = parse("").unwrap();
    assert_eq!(config.warehouse.engine, EngineChoice::Auto);
    assert_eq!(config.warehouse.max_errors, 0);
    assert_eq!(
        config.warehouse.duckdb_path,
        Path::new("/base/sparkify.duckdb")
    );
    assert!(config.local.is_none());
    assert_eq!(config.cluster.db_port, 5439);
}

#[test]
fn quoted_values_and_lowercase_keys_as_in_the_original() {
    let config = parse(
        "[CLUSTER]\nhost=''\nDB_PASSWORD='Passw0rd'\n[S3]\nLOG_DATA='s3://udacity-dend/log_data'\n",
    )
    .unwrap();
    assert_eq!(config.cluster.host, "");
    assert_eq!(config.cluster.db_password.expose(), "Passw0rd");
    assert_eq!(config.s3.log_data, "s3://udacity-dend/log_data");
}

#[test]
fn local_paths_are_relative_to_the_config_directory() {
    let config =
        parse("[LOCAL]\nLOG_DATA=data/log_data\nSONG_DATA=/abs/songs\nLOG_JSONPATH=data/p.json\n")
            .unwrap();
    let local = config.local.unwrap();
    assert_eq!(local.log_data, Location::File("/base/data/log_data".into()));
    assert_eq!(local.song_data, Location::File("/abs/songs".into()));
}

#[test]
fn sources_come_from_local_else_from_s3() {
    let config = parse(
        "[S3]\nLOG_DATA=s3://b/log_data\nSONG_DATA=s3://b/song_data\nLOG_JSONPATH=s3://b/p.json\n",
    )
    .unwrap();
    let sources = config.sources().unwrap();
    assert_eq!(sources.section, "S3");
    assert_eq!(
        sources.log_data,
        Location::S3 {
            bucket: "b".into(),
            key: "log_data/".into()
        },
        "a source prefix is a directory"
    );
    assert_eq!(sources.log_jsonpath.to_string(), "s3://b/p.json");
    let err = parse("[S3]\nLOG_DATA=/tmp/x\n")
        .unwrap()
        .sources()
        .unwrap_err();
    assert!(err.to_string().contains("[S3] LOG_DATA"), "{err}");
    let err = parse("[LOCAL]\nLOG_DATA=s3://\n").unwrap_err().to_string();
    assert!(err.contains("needs a bucket"), "{err}");
}

#[test]
fn source_prefixes_are_directories_unless_they_name_one_json_object() {
    let dir = |uri: &str| {
        Location::parse(uri, Path::new(""))
            .unwrap()
            .into_directory()
    };
    assert_eq!(dir("s3://b/song_data").to_string(), "s3://b/song_data/");
    assert_eq!(dir("s3://b/song_data/").to_string(), "s3://b/song_data/");
    assert_eq!(
        dir("s3://b/log/day.JSON").to_string(),
        "s3://b/log/day.JSON"
    );
    assert_eq!(dir("s3://b").to_string(), "s3://b/");
    assert_eq!(dir("local/dir"), Location::File("local/dir".into()));
    let config = parse("[S3]\nMANIFEST_PREFIX=s3://m/manifests\n").unwrap();
    assert_eq!(
        config.manifest_prefix().unwrap().unwrap().to_string(),
        "s3://m/manifests/"
    );
    let err = parse("[S3]\nMANIFEST_PREFIX=/tmp/m\n")
        .unwrap()
        .manifest_prefix()
        .unwrap_err()
        .to_string();
    assert!(err.contains("[S3] MANIFEST_PREFIX"), "{err}");
    assert!(parse("").unwrap().manifest_prefix().unwrap().is_none());
}

#[test]
fn duckdb_memory_limit_is_an_amount_duckdb_reads() {
    let limit = |text: &str| {
        parse(&format!("[WAREHOUSE]\nDUCKDB_MEMORY_LIMIT={text}\n"))
            .map(|c| c.warehouse.duckdb_memory_limit.as_str().to_string())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        parse("").unwrap().warehouse.duckdb_memory_limit.as_str(),
        MemoryLimit::default_for(crate::machine::usable_memory_bytes()).as_str()
    );
    assert_eq!(limit("4gb").unwrap(), "4GB");
    assert_eq!(limit(" 1.5 GiB").unwrap(), "1.5GiB");
    for bad in [
        "lots",
        "512",
        "0MB",
        "-1GB",
        "1GB'; DROP TABLE songs; --",
        "80%",
    ] {
        let err = limit(bad).unwrap_err();
        assert!(
            err.contains("[WAREHOUSE] DUCKDB_MEMORY_LIMIT") && err.contains("such as 512MB"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn provisioned_redshift_hosts_are_known_by_their_name() {
    let provisioned = |host: &str| {
        parse(&format!("[CLUSTER]\nHOST={host}\n"))
            .unwrap()
            .cluster
            .is_provisioned_redshift()
    };
    assert!(provisioned("c.abc.us-west-2.redshift.amazonaws.com"));
    assert!(provisioned("c.abc.cn-north-1.redshift.amazonaws.com.cn"));
    assert!(provisioned("C.ABC.US-WEST-2.REDSHIFT.AMAZONAWS.COM."));
    assert!(!provisioned(
        "wg.123.us-west-2.redshift-serverless.amazonaws.com"
    ));
    assert!(!provisioned("warehouse.example.com"));
}

#[test]
fn sslmode_is_checked() {
    let config = parse("[CLUSTER]\nSSLMODE=Verify-Full\nSSLROOTCERT=ca.pem\n").unwrap();
    assert_eq!(config.cluster.sslmode, Some(SslMode::VerifyFull));
    assert_eq!(
        config.cluster.sslrootcert.as_deref(),
        Some(Path::new("/base/ca.pem"))
    );
    let err = parse("[CLUSTER]\nSSLMODE=on\n").unwrap_err().to_string();
    assert!(err.contains("verify-full"), "{err}");
}

#[test]
fn malformed_keys_name_section_key_and_fix() {
    let err = parse("[WAREHOUSE]\nMAX_ERRORS=many\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("[WAREHOUSE] MAX_ERRORS"), "{err}");
    assert!(err.contains("whole number"), "{err}");
    let err = parse("[WAREHOUSE]\nENGINE=oracle\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[WAREHOUSE] ENGINE") && err.contains("duckdb"),
        "{err}"
    );
    let err = parse("[LOCAL]\nLOG_DATA=x\n").unwrap_err().to_string();
    assert!(err.contains("[LOCAL] SONG_DATA is missing"), "{err}");
}

#[test]
fn engine_follows_the_host_unless_chosen() {
    let engine = |text: &str| parse(text).unwrap().engine();
    assert_eq!(engine(""), EngineChoice::DuckDb);
    assert_eq!(
        engine("[CLUSTER]\nHOST=db.internal\n"),
        EngineChoice::Postgres
    );
    assert_eq!(
        engine("[CLUSTER]\nHOST=wg.123.us-west-2.redshift-serverless.amazonaws.com\n"),
        EngineChoice::Redshift
    );
    assert_eq!(
        engine("[CLUSTER]\nHOST=c.abc.us-west-2.redshift.amazonaws.com\n"),
        EngineChoice::Redshift
    );
    assert_eq!(
        engine("[CLUSTER]\nHOST=db.internal\n[WAREHOUSE]\nENGINE=duckdb\n"),
        EngineChoice::DuckDb
    );
}

#[test]
fn secrets_never_show_in_debug() {
    let config =
        parse("[CLUSTER]\nDB_PASSWORD=s3cr3t-sentinel\n[AWS]\nKEY=AKID\nSECRET=s3cr3t-sentinel\n")
            .unwrap();
    assert_eq!(config.aws.secret.expose(), "s3cr3t-sentinel");
    let shown = format!("{config:?} {}", config.cluster.db_password);
    assert!(!shown.contains("s3cr3t-sentinel"), "{shown}");
}

#[test]
fn a_forgotten_quote_is_refused_naming_the_key_never_the_value() {
    for text in [
        "[CLUSTER]\nHOST = 'db.example.com\nDB_NAME = dwh\nDB_PASSWORD = sentinel-pw\n",
        "[CLUSTER]\nHOST = db.example.com'\nDB_PASSWORD = sentinel-pw\n",
        "[CLUSTER]\nDB_PASSWORD = 'sentinel-pw\nHOST = h\n",
        "[CLUSTER]\nHOST = db\n   DB_PASSWORD = sentinel-pw\n",
    ] {
        let err = format!("{:#}", parse(text).unwrap_err());
        assert!(!err.contains("sentinel-pw"), "{err}");
        assert!(err.contains("[CLUSTER] "), "{err}");
    }
    let err = format!(
        "{:#}",
        parse("[CLUSTER]\nHOST = 'db.example.com\n").unwrap_err()
    );
    assert!(
        err.contains("[CLUSTER] HOST: the value opens a quote"),
        "{err}"
    );
    let err = format!("{:#}", parse("[CLUSTER]\nHOST = a\n  b\n").unwrap_err());
    assert!(err.contains("[CLUSTER] HOST: the value continues"), "{err}");
}

#[test]
fn values_are_read_as_python_reads_them() {
    let config = parse(
        "[cluster]\nDB_PASSWORD = p#w;d'x\nhost: \"h\"\ndb_port=1\nDB_PORT = 2\n[AWS]\nKEY = 'AKID'\n",
    )
    .unwrap();
    assert_eq!(
        config.cluster.db_password.expose(),
        "p#w;d'x",
        "no inline comments"
    );
    assert_eq!(config.cluster.host, "h");
    assert_eq!(config.cluster.db_port, 2, "the last of repeated keys wins");
    assert_eq!(config.aws.key.expose(), "AKID");
    assert!(
        !format!("{config:?}").contains("AKID"),
        "the key id is masked"
    );
    let config = parse("[WAREHOUSE]\nDUCKDB_PATH = C:\\dwh\\\nMAX_ERRORS = 3\n").unwrap();
    assert_eq!(
        config.warehouse.max_errors, 3,
        "a trailing backslash continues nothing"
    );
    let err = parse("[CLUSTER\nHOST=x\n").unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn values_in_errors_are_escaped_and_cut() {
    let long = "x".repeat(500);
    let err = parse(&format!("[WAREHOUSE]\nMAX_ERRORS = \u{1b}[31m{long}\n"))
        .unwrap_err()
        .to_string();
    assert!(!err.contains('\u{1b}'), "{err}");
    assert!(err.contains("\\u{1b}[31m") && err.contains("..."), "{err}");
    assert!(err.len() < 300, "{err}");
}

#[test]
fn redshift_endpoints_are_known_in_every_partition_and_fully_qualified() {
    let engine = |host: &str| {
        parse(&format!("[CLUSTER]\nHOST={host}\n"))
            .unwrap()
            .engine()
    };
    for host in [
        "c.abc.cn-north-1.redshift.amazonaws.com.cn",
        "wg.1.cn-northwest-1.redshift-serverless.amazonaws.com.cn",
        "wg.1.us-west-2.redshift-serverless.amazonaws.com.",
        "C.ABC.US-WEST-2.REDSHIFT.AMAZONAWS.COM",
    ] {
        assert_eq!(engine(host), EngineChoice::Redshift, "{host}");
    }
    assert_eq!(engine("redshift.example.com"), EngineChoice::Postgres);
}

#[cfg(unix)]
#[test]
fn secrets_readable_by_others_are_noticed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dwh.cfg");
    let check = |text: &str, mode: u32| {
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        Config::load(&path).unwrap().secrets_readable_by_others()
    };
    assert_eq!(
        check("[CLUSTER]\nDB_PASSWORD = x\n", 0o644),
        Some("group and others")
    );
    assert_eq!(check("[AWS]\nSECRET = x\n", 0o640), Some("group"));
    assert_eq!(check("[CLUSTER]\nDB_PASSWORD = x\n", 0o600), None);
    assert_eq!(check("[CLUSTER]\nDB_PASSWORD =\n", 0o644), None);
}

#[test]
fn a_password_on_its_own_line_is_refused_by_line_number_never_printed() {
    let err = parse("[CLUSTER]\nDB_PASSWORD =\nHunter2-Secret\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 3 is not KEY = value"), "{err}");
    assert!(
        !err.to_ascii_lowercase().contains("hunter2"),
        "the line's text is shown: {err}"
    );
}

#[test]
fn only_plausible_unknown_keys_are_named() {
    // A password with an `=` in it, wrapped onto its own line, reads as a key.
    let config =
        parse("[CLUSTER]\nDB_PASSWORD =\nhunter2x=yz\n[WAREHOUSE]\nDUCKDB_PTH = a\n").unwrap();
    let said: Vec<String> = config.unknown.iter().map(|u| u.to_string()).collect();
    let all = said.join("\n");
    assert!(!all.to_ascii_lowercase().contains("hunter2x"), "{all}");
    assert!(all.contains("on line 3"), "{all}");
    assert!(
        all.contains("DUCKDB_PTH") && all.contains("did you mean DUCKDB_PATH"),
        "{all}"
    );
    let strict: Vec<String> = config.unknown.iter().map(|u| u.as_error()).collect();
    assert!(!strict.join(" ").to_ascii_lowercase().contains("hunter2x"));
}

#[test]
fn numbers_are_bounded_when_read() {
    for (text, key) in [
        (
            "[CLUSTER]\nCONNECT_TIMEOUT = 18446744073709551615\n",
            "CONNECT_TIMEOUT",
        ),
        ("[CLUSTER]\nCONNECT_TIMEOUT = 3601\n", "CONNECT_TIMEOUT"),
        ("[CLUSTER]\nCONNECT_TIMEOUT = 0\n", "CONNECT_TIMEOUT"),
        (
            "[S3]\nATTEMPT_TIMEOUT = 18446744073709551615\n",
            "ATTEMPT_TIMEOUT",
        ),
        ("[S3]\nATTEMPT_TIMEOUT = 0\n", "ATTEMPT_TIMEOUT"),
        (
            "[WAREHOUSE]\nMAX_ERRORS = 18446744073709551615\n",
            "MAX_ERRORS",
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains(key) && err.contains("a whole number from"),
            "{err}"
        );
    }
    let config =
        parse("[CLUSTER]\nCONNECT_TIMEOUT = 3600\n[WAREHOUSE]\nMAX_ERRORS = 1000000000\n").unwrap();
    assert_eq!(config.cluster.connect_timeout.as_secs(), 3600);
    assert_eq!(config.warehouse.max_errors, MAX_ERRORS_LIMIT);
    // Redshift's MAXERROR is one more, and never wraps.
    assert!(crate::sql::redshift_maxerror(u64::MAX).is_err());
}

#[test]
fn blanks_inside_quotes_are_the_values_own() {
    let config =
        parse("[CLUSTER]\nDB_PASSWORD = \"  two blanks  \"\nDB_USER =  plain  \n").unwrap();
    assert_eq!(config.cluster.db_password.expose(), "  two blanks  ");
    assert_eq!(config.cluster.db_user, "plain");
}

#[test]
fn require_auth_is_a_list_of_libpq_method_names() {
    let config = parse("[CLUSTER]\nREQUIRE_AUTH = md5, scram-sha-256\n").unwrap();
    assert_eq!(
        config.cluster.require_auth,
        Some(vec![
            crate::pg_auth::Method::Md5,
            crate::pg_auth::Method::Scram
        ])
    );
    let err = parse("[CLUSTER]\nREQUIRE_AUTH = kerberos\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("REQUIRE_AUTH") && err.contains("scram-sha-256"),
        "{err}"
    );
}

#[test]
fn the_default_memory_limit_is_a_quarter_of_the_machine_between_floor_and_ceiling() {
    let gib = |n: u64| Some(n << 30);
    let default = |usable| MemoryLimit::default_for(usable).as_str().to_string();
    assert_eq!(default(gib(24)), "6144MiB");
    assert_eq!(default(gib(1)), "512MiB", "the floor");
    assert_eq!(default(gib(64)), "8192MiB", "the ceiling");
    assert_eq!(default(None), "512MiB", "unknown memory: the floor");
    // What DuckDB is given is an amount it reads.
    assert!(default(gib(24)).parse::<MemoryLimit>().is_ok());
}
