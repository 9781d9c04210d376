//! `[AWS]` and `[DWH]`: the static keys a user may keep in `dwh.cfg`, and the Redshift
//! Serverless resources `iac_create` provisions and `iac_delete` removes.

use super::Secret;

/// The daily compute limit on a new workgroup unless `[DWH] DWH_USAGE_LIMIT_RPU_HOURS` says
/// otherwise: 24 RPU-hours, three hours of queries a day at the default 8 RPU.
pub const DEFAULT_USAGE_LIMIT_RPU_HOURS: u64 = 24;

/// `[AWS]`: static keys, when the user keeps them here rather than in the AWS default chain.
/// Both are masked in `Debug`: the key id names the account's user.
#[derive(Debug, Clone, Default)]
pub struct AwsKeys {
    pub key: Secret,
    pub secret: Secret,
}

/// `[DWH]`: the Redshift Serverless resources `iac_create` provisions and `iac_delete` removes,
/// which the redshift-data engine also addresses.
#[derive(Debug, Clone, Default)]
pub struct DwhConfig {
    pub region: String,
    pub namespace: String,
    pub workgroup: String,
    pub iam_role_name: String,
    /// Redshift Processing Units of the workgroup (`DWH_BASE_CAPACITY`, default 8; which values
    /// Redshift takes is checked by `iac::capacity_problem`).
    pub base_capacity: i32,
    /// The most RPUs the workgroup may scale to (`DWH_MAX_CAPACITY`); `None`: the base
    /// capacity, so that no query costs more per second than the base does.
    pub max_capacity: Option<i32>,
    /// The daily compute limit `iac_create` puts on the workgroup, in RPU-hours
    /// (`DWH_USAGE_LIMIT_RPU_HOURS`, default [`DEFAULT_USAGE_LIMIT_RPU_HOURS`]; 0: none).
    pub usage_limit_rpu_hours: i64,
    /// A provisioned cluster for the redshift-data engine (`DWH_CLUSTER_IDENTIFIER`), instead of
    /// the workgroup.
    pub cluster_identifier: String,
    /// The id `iac_create` tags its resources with and writes here (`DWH_INSTANCE_ID`); empty
    /// until then. `iac_delete` deletes only what carries it (see `iac::owner`).
    pub instance_id: String,
}

/// Whether `id` can be an instance id (`[DWH] DWH_INSTANCE_ID`, the tag value iac_create made): 1 to 64 lowercase hex
/// digits, letters or hyphens, so a hand-edited value is still a plain tag value.
pub fn is_instance_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
