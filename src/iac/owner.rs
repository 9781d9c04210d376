//! Which resources are this tool's. `iac_create` tags everything it creates (role, namespace,
//! workgroup) with `created-by = sparkify-iac` and `sparkify-config = <config file name>`;
//! `iac_create` and `iac_delete` refuse to change or remove a resource of the configured name
//! without that tag unless `--adopt` is given (then `iac_create` tags it), so neither touches
//! what someone else made.

use anyhow::{anyhow, Result};

use super::Clients;
use crate::aws::explain;

pub const OWNER_TAG_KEY: &str = "created-by";
pub const OWNER_TAG_VALUE: &str = "sparkify-iac";
/// The tag naming the config file the resource was made from.
pub const CONFIG_TAG_KEY: &str = "sparkify-config";

/// Whether `tags` (key, value) mark a resource as this tool's.
pub(super) fn is_owned<'a>(mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    tags.any(|(key, value)| key == OWNER_TAG_KEY && value == OWNER_TAG_VALUE)
}

/// The refusal to touch `what` (configured by `[DWH] setting`), which is not this tool's.
pub(super) fn not_ours(what: &str, setting: &str) -> anyhow::Error {
    anyhow!(
        "{what} exists but was not made by iac_create (it has no tag {OWNER_TAG_KEY} = \
         {OWNER_TAG_VALUE}), so it is left alone: set [DWH] {setting} to another name, or pass \
         --adopt to let iac_create and iac_delete manage it"
    )
}

/// The tags of a role `iac_create` creates or adopts.
pub(super) fn iam_tags(config_name: &str) -> Result<Vec<aws_sdk_iam::types::Tag>> {
    [
        (OWNER_TAG_KEY, OWNER_TAG_VALUE),
        (CONFIG_TAG_KEY, config_name),
    ]
    .into_iter()
    .map(|(key, value)| {
        aws_sdk_iam::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
            .map_err(|e| anyhow!("an IAM tag cannot be built: {e}"))
    })
    .collect()
}

/// The tags of a namespace or workgroup `iac_create` creates or adopts.
pub(super) fn serverless_tags(
    config_name: &str,
) -> Result<Vec<aws_sdk_redshiftserverless::types::Tag>> {
    [
        (OWNER_TAG_KEY, OWNER_TAG_VALUE),
        (CONFIG_TAG_KEY, config_name),
    ]
    .into_iter()
    .map(|(key, value)| {
        aws_sdk_redshiftserverless::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
            .map_err(|e| anyhow!("a Redshift Serverless tag cannot be built: {e}"))
    })
    .collect()
}

/// Whether the namespace or workgroup `arn` is this tool's, by its tags
/// (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_ListTagsForResource.html).
pub(super) async fn serverless_owned(clients: &Clients, arn: &str, what: &str) -> Result<bool> {
    let listed = clients
        .serverless
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot read the tags of {what} (redshift-serverless:ListTagsForResource): {}",
                explain(&e)
            )
        })?;
    Ok(is_owned(listed.tags().iter().map(|t| (t.key(), t.value()))))
}

/// Tags the namespace or workgroup `arn` as this tool's (`--adopt`).
pub(super) async fn adopt_serverless(
    clients: &Clients,
    arn: &str,
    what: &str,
    config_name: &str,
) -> Result<()> {
    clients
        .serverless
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(serverless_tags(config_name)?))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot tag {what} as iac_create's (redshift-serverless:TagResource): {}",
                explain(&e)
            )
        })?;
    Ok(())
}

/// Checks, before anything is deleted, that the namespace or workgroup `arn` is this tool's.
pub(super) async fn ensure_serverless_ours(
    clients: &Clients,
    arn: Option<&str>,
    what: &str,
    setting: &str,
    adopt: bool,
) -> Result<()> {
    if adopt {
        return Ok(());
    }
    let arn = arn.ok_or_else(|| anyhow!("{what} has no ARN to read its tags by"))?;
    if serverless_owned(clients, arn, what).await? {
        Ok(())
    } else {
        Err(not_ours(what, setting))
    }
}
