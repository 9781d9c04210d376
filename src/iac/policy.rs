//! The role's documents: the trust policy (Redshift may assume it) and the least-privilege S3
//! read policy derived from `[S3]`, which no value in the config can widen.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use crate::config::{Config, Location};

/// The inline policy for the role: `s3:ListBucket` on each source bucket, for the source
/// prefixes only, `s3:GetObject` on the objects under the data prefixes, and on the JSONPaths
/// object alone. No value of `[S3]` can widen it: bucket names are checked, and `*`, `?` and
/// `$` in keys are written as IAM's literal `${*}`, `${?}` and `${$}`.
pub fn s3_read_policy(config: &Config) -> Result<String> {
    let sources = config
        .s3_sources()
        .context("the role's policy is derived from the [S3] sources")?;
    // (bucket, listed prefixes, object ARNs) per bucket, in the order of the sources.
    let mut buckets: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    let mut readable = vec![
        ("LOG_DATA", sources.log_data, true),
        ("SONG_DATA", sources.song_data, true),
        ("LOG_JSONPATH", sources.log_jsonpath, false),
    ];
    // The manifests etl may write there are read by COPY with this role.
    if let Some(prefix) = config.manifest_prefix()? {
        readable.push(("MANIFEST_PREFIX", prefix, true));
    }
    for (key_name, location, is_directory) in readable {
        let Location::S3 { bucket, key } = location else {
            unreachable!("s3_sources holds only S3 locations");
        };
        check_bucket_name(&bucket).map_err(|why| {
            anyhow!("[S3] {key_name} = s3://{bucket}/{key}: {why}: the role's policy names it")
        })?;
        if key.is_empty() || key == "/" {
            bail!(
                "[S3] {key_name} = s3://{bucket}/{key}: name a prefix (s3://{bucket}/data/) or an \
                 object; the role is never given a whole bucket"
            );
        }
        let literal = iam_literal(&key);
        // A data source naming one `.json` object is granted that object alone.
        let is_directory = is_directory && key.ends_with('/');
        let (listed, objects) = if is_directory {
            // The prefix ends in `/` (see Location::into_directory): `p/` and what is below it.
            (
                vec![literal.clone(), format!("{literal}*")],
                format!("arn:aws:s3:::{bucket}/{literal}*"),
            )
        } else {
            (
                vec![literal.clone()],
                format!("arn:aws:s3:::{bucket}/{literal}"),
            )
        };
        match buckets.iter_mut().find(|(b, _, _)| *b == bucket) {
            Some((_, prefixes, arns)) => {
                prefixes.extend(listed);
                arns.push(objects);
            }
            None => buckets.push((bucket, listed, vec![objects])),
        }
    }
    let mut statements = Vec::new();
    for (bucket, prefixes, _) in &buckets {
        statements.push(json!({
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": format!("arn:aws:s3:::{bucket}"),
            "Condition": {"StringLike": {"s3:prefix": prefixes}},
        }));
    }
    let objects: Vec<&String> = buckets.iter().flat_map(|(_, _, arns)| arns).collect();
    statements.push(json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": objects}));
    Ok(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
}

/// A key as IAM reads it literally in a Resource or a StringLike condition: `*`, `?` and `$`
/// would be a wildcard or start a variable, and are written `${*}`, `${?}`, `${$}`
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html,
/// "Special characters").
fn iam_literal(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            '$' => out.push_str("${$}"),
            c => out.push(c),
        }
    }
    out
}

/// S3's rules for a general purpose bucket's name: 3 to 63 characters of lowercase letters,
/// digits, dots and hyphens, beginning and ending with a letter or digit
/// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
fn check_bucket_name(bucket: &str) -> std::result::Result<(), String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (3..=63).contains(&bucket.len())
        && bucket.chars().all(allowed)
        && edge(bucket.chars().next())
        && edge(bucket.chars().last())
    {
        Ok(())
    } else {
        Err(format!("{bucket:?} is not an S3 bucket name"))
    }
}

/// Who may assume the role: Redshift (provisioned and Serverless), on behalf of `account`
/// only. `aws:SourceAccount` is in a request only when a service acts for a resource's owner
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-sourceaccount),
/// and the Redshift guide does not say that its COPY sends it, so the condition is
/// `StringEqualsIfExists`: a request that carries another account is refused, one without the
/// key still works (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_IfExists).
pub(super) fn assume_role_policy(account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": ["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"]},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEqualsIfExists": {"aws:SourceAccount": account}},
        }],
    })
    .to_string()
}

/// The policy document as IAM returns it (URL-encoded JSON), parsed for comparison.
pub(super) fn policy_value(document: &str) -> Option<serde_json::Value> {
    let decoded = percent_encoding::percent_decode_str(document)
        .decode_utf8()
        .ok()?;
    serde_json::from_str(&decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policy_reads_only_the_sources() {
        let config = Config::parse(
            "[S3]\nLOG_DATA=s3://udacity-dend/log_data\nSONG_DATA=s3://udacity-dend/song_data\n\
             LOG_JSONPATH=s3://udacity-dend/log_json_path.json\n",
            "dwh.cfg".as_ref(),
            "/".as_ref(),
        )
        .unwrap();
        let policy: serde_json::Value =
            serde_json::from_str(&s3_read_policy(&config).unwrap()).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Action"], "s3:ListBucket");
        assert_eq!(statements[0]["Resource"], "arn:aws:s3:::udacity-dend");
        assert_eq!(
            statements[0]["Condition"]["StringLike"]["s3:prefix"],
            json!([
                "log_data/",
                "log_data/*",
                "song_data/",
                "song_data/*",
                "log_json_path.json"
            ])
        );
        assert_eq!(
            statements[1]["Resource"],
            json!([
                "arn:aws:s3:::udacity-dend/log_data/*",
                "arn:aws:s3:::udacity-dend/song_data/*",
                "arn:aws:s3:::udacity-dend/log_json_path.json"
            ])
        );
        assert!(!policy.to_string().contains("s3:*"));
    }

    #[test]
    fn no_uri_widens_the_policy() {
        let policy = |log_data: &str| {
            let config = Config::parse(
                &format!(
                    "[S3]\nLOG_DATA={log_data}\nSONG_DATA=s3://bkt/song_data\n\
                     LOG_JSONPATH=s3://bkt/paths.json\n"
                ),
                "dwh.cfg".as_ref(),
                "/".as_ref(),
            )
            .unwrap();
            s3_read_policy(&config).map_err(|e| e.to_string())
        };
        let err = policy("s3://*/x").unwrap_err();
        assert!(err.contains("not an S3 bucket name"), "{err}");
        let err = policy("s3://bkt").unwrap_err();
        assert!(err.contains("never given a whole bucket"), "{err}");
        let err = policy("s3://B/x").unwrap_err();
        assert!(err.contains("not an S3 bucket name"), "{err}");
        let text = policy("s3://bkt/l?g*").unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["Statement"][0]["Condition"]["StringLike"]["s3:prefix"][0],
            "l${?}g${*}/"
        );
        assert_eq!(
            doc["Statement"][1]["Resource"][0],
            "arn:aws:s3:::bkt/l${?}g${*}/*"
        );
        assert_eq!(iam_literal("a$b"), "a${$}b");
    }

    #[test]
    fn url_encoded_policies_compare_by_value() {
        let encoded = "%7B%22a%22%3A%20%5B1%2C2%5D%7D";
        assert_eq!(policy_value(encoded), Some(json!({"a": [1, 2]})));
    }
}
