//! Which resources are this config's. `iac_create` tags everything it creates (role, namespace,
//! workgroup) with `created-by = sparkify-iac`, `sparkify-config = <config file name>` and
//! `sparkify-instance = <[DWH] DWH_INSTANCE_ID>`, an id it makes once and writes into the config
//! file before anything is created. The first tag is public and the same for every user of the
//! toolkit, so only the instance id says whose a resource is: `iac_create` and `iac_delete`
//! touch a resource of the configured name only when it carries this config's id (or with
//! `--adopt`, which then tags it), so a second user of the account who keeps the default names
//! is refused instead of deleting the first user's warehouse.

use anyhow::{anyhow, Result};

use super::Clients;
use crate::aws::explain;

pub const OWNER_TAG_KEY: &str = "created-by";
pub const OWNER_TAG_VALUE: &str = "sparkify-iac";
/// The tag naming the config file the resource was made from.
pub const CONFIG_TAG_KEY: &str = "sparkify-config";
/// The tag holding the instance id of the config the resource was made from.
pub const INSTANCE_TAG_KEY: &str = "sparkify-instance";

/// Whose a resource is, by its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owner {
    /// Made by iac_create from this config (its instance id).
    ThisConfig,
    /// Made by iac_create from another config: another user's, or another copy's.
    OtherConfig { instance: Option<String> },
    /// Not made by iac_create.
    Foreign,
}

/// Whose the resource with `tags` (key, value) is, for the config with `instance_id` (empty:
/// a config that has created nothing yet, which owns nothing).
pub(super) fn owner<'a>(
    tags: impl Iterator<Item = (&'a str, &'a str)>,
    instance_id: &str,
) -> Owner {
    let mut made_by_iac = false;
    let mut instance = None;
    for (key, value) in tags {
        made_by_iac |= key == OWNER_TAG_KEY && value == OWNER_TAG_VALUE;
        if key == INSTANCE_TAG_KEY {
            instance = Some(value.to_string());
        }
    }
    match instance {
        Some(id) if made_by_iac && !instance_id.is_empty() && id == instance_id => {
            Owner::ThisConfig
        }
        _ if made_by_iac => Owner::OtherConfig { instance },
        _ => Owner::Foreign,
    }
}

/// The refusal to touch `what` (configured by `[DWH] setting`), which is not this config's.
pub(super) fn not_ours(what: &str, setting: &str, owner: &Owner) -> anyhow::Error {
    let whose = match owner {
        Owner::ThisConfig => return anyhow!("{what} is this config's"),
        Owner::Foreign => format!(
            "was not made by iac_create (it has no tag {OWNER_TAG_KEY} = {OWNER_TAG_VALUE})"
        ),
        Owner::OtherConfig { instance: Some(id) } => format!(
            "was made by iac_create from another config (its {INSTANCE_TAG_KEY} tag is {id}, \
             not this config's [DWH] DWH_INSTANCE_ID): it may be another user's"
        ),
        Owner::OtherConfig { instance: None } => format!(
            "was made by iac_create but carries no {INSTANCE_TAG_KEY} tag (an older version \
             made it, for this config or another user's)"
        ),
    };
    anyhow!(
        "{what} exists but {whose}, so it is left alone: set [DWH] {setting} to another name, \
         or, if it is yours, pass --adopt to let iac_create and iac_delete manage it (--adopt \
         tags it with this config's instance id)"
    )
}

/// The tags of a role `iac_create` creates or adopts.
pub(super) fn iam_tags(
    config_name: &str,
    instance_id: &str,
) -> Result<Vec<aws_sdk_iam::types::Tag>> {
    [
        (OWNER_TAG_KEY, OWNER_TAG_VALUE),
        (CONFIG_TAG_KEY, config_name),
        (INSTANCE_TAG_KEY, instance_id),
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
    instance_id: &str,
) -> Result<Vec<aws_sdk_redshiftserverless::types::Tag>> {
    [
        (OWNER_TAG_KEY, OWNER_TAG_VALUE),
        (CONFIG_TAG_KEY, config_name),
        (INSTANCE_TAG_KEY, instance_id),
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

/// Whose the namespace or workgroup `arn` is, by its tags
/// (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_ListTagsForResource.html).
pub(super) async fn serverless_owner(
    clients: &Clients,
    arn: &str,
    what: &str,
    instance_id: &str,
) -> Result<Owner> {
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
    Ok(owner(
        listed.tags().iter().map(|t| (t.key(), t.value())),
        instance_id,
    ))
}

/// Tags the namespace or workgroup `arn` as this config's (`--adopt`), through TagResource
/// (https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_TagResource.html).
pub(super) async fn adopt_serverless(
    clients: &Clients,
    arn: &str,
    what: &str,
    config_name: &str,
    instance_id: &str,
) -> Result<()> {
    clients
        .serverless
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(serverless_tags(config_name, instance_id)?))
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

/// Checks, before anything is deleted, that the namespace or workgroup `arn` is this config's.
pub(super) async fn ensure_serverless_ours(
    clients: &Clients,
    arn: Option<&str>,
    what: &str,
    setting: &str,
    plan: &super::DeletePlan,
) -> Result<()> {
    if plan.adopt {
        return Ok(());
    }
    let arn = arn.ok_or_else(|| anyhow!("{what} has no ARN to read its tags by"))?;
    match serverless_owner(clients, arn, what, &plan.instance_id).await? {
        Owner::ThisConfig => Ok(()),
        other => Err(not_ours(what, setting, &other)),
    }
}

/// A new instance id for a config that has none: 16 hex digits, from the standard library's
/// per-process random hash keys, the time and the process id. It only has to differ between
/// the configs of one account, and is not a secret.
pub fn new_instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_configs_instance_id_makes_a_resource_its_own() {
        let ours = [(OWNER_TAG_KEY, OWNER_TAG_VALUE), (INSTANCE_TAG_KEY, "abc")];
        assert_eq!(owner(ours.into_iter(), "abc"), Owner::ThisConfig);
        assert_eq!(
            owner(ours.into_iter(), "def"),
            Owner::OtherConfig {
                instance: Some("abc".into())
            }
        );
        // A config without an id owns nothing, not even an id-less resource.
        assert_eq!(
            owner([(OWNER_TAG_KEY, OWNER_TAG_VALUE)].into_iter(), ""),
            Owner::OtherConfig { instance: None }
        );
        assert_eq!(
            owner(ours.into_iter(), ""),
            Owner::OtherConfig {
                instance: Some("abc".into())
            }
        );
        // The instance tag alone, without iac_create's, is not iac_create's.
        assert_eq!(
            owner([(INSTANCE_TAG_KEY, "abc")].into_iter(), "abc"),
            Owner::Foreign
        );
    }

    #[test]
    fn new_instance_ids_differ_and_are_plain_tag_values() {
        let a = new_instance_id();
        let b = new_instance_id();
        assert_ne!(a, b);
        assert!(crate::config::is_instance_id(&a) && a.len() == 16, "{a}");
        assert!(
            !crate::config::is_instance_id("")
                && !crate::config::is_instance_id("ABC")
                && !crate::config::is_instance_id("a b")
        );
    }
}
