//! The ingress rule that lets this machine reach the workgroup's port: at most a /32 (or, when
//! asked, a /24), marked by a description naming the workgroup so that `iac_delete` revokes
//! exactly that rule.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange};

use super::retry::code;
use super::{Change, Clients};
use crate::aws::explain;

/// The description that marks the rule `iac_create` made on `workgroup`'s security group. EC2
/// allows only letters, digits, spaces and `._-:/()#,@[]+=&;{}!$*` in it, at most 255
/// characters (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpRange.html), and a
/// workgroup name is lowercase letters, digits and hyphens.
pub fn ingress_description(workgroup: &str) -> String {
    format!("sparkify iac_create: workgroup {workgroup} from the callers IP")
}

/// Opens TCP `port` on `group` to `cidr`; a rule that is already there is success.
pub(super) async fn ensure_ingress(
    clients: &Clients,
    group: &str,
    port: i32,
    cidr: &str,
    workgroup: &str,
) -> Result<Change> {
    let permission = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(
            IpRange::builder()
                .cidr_ip(cidr)
                .description(ingress_description(workgroup))
                .build(),
        )
        .build();
    match clients
        .ec2
        .authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(permission)
        .send()
        .await
    {
        Ok(_) => Ok(Change::Created),
        Err(e) if code(&e) == "InvalidPermission.Duplicate" => Ok(Change::Unchanged),
        Err(e) => bail!(
            "cannot open TCP {port} from {cidr} on security group {group}: {}",
            explain(&e)
        ),
    }
}

/// Revokes the ingress rules `iac_create` made for `workgroup` on `group` (known by their
/// description).
pub(super) async fn revoke_ingress(
    clients: &Clients,
    group: &str,
    workgroup: &str,
) -> Result<usize> {
    let description = ingress_description(workgroup);
    let rules = clients
        .ec2
        .describe_security_group_rules()
        .filters(Filter::builder().name("group-id").values(group).build())
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot list the rules of security group {group}: {}",
                explain(&e)
            )
        })?;
    let ours: Vec<String> = rules
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() == Some(false) && r.description() == Some(description.as_str()))
        .filter_map(|r| r.security_group_rule_id().map(str::to_string))
        .collect();
    if ours.is_empty() {
        return Ok(0);
    }
    match clients
        .ec2
        .revoke_security_group_ingress()
        .group_id(group)
        .set_security_group_rule_ids(Some(ours.clone()))
        .send()
        .await
    {
        Ok(_) => Ok(ours.len()),
        Err(e) if code(&e) == "InvalidPermission.NotFound" => Ok(0),
        Err(e) => bail!("cannot revoke the ingress rule on {group}: {}", explain(&e)),
    }
}

/// The caller's public IPv4 address as a /32, asked of `endpoint` (a service that answers with
/// the address as text, such as https://checkip.amazonaws.com).
pub async fn caller_cidr(endpoint: &str) -> Result<String> {
    crate::tls::install_crypto_provider();
    let hint = || {
        format!(
            "cannot learn this machine's public IP from {endpoint}: pass --cidr ADDRESS/32, or \
             --no-ingress to use the redshift-data engine"
        )
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .with_context(hint)?;
    let text = client
        .get(endpoint)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(hint)?
        .text()
        .await
        .with_context(hint)?;
    let address: std::net::Ipv4Addr = text
        .trim()
        .parse()
        .map_err(|_| anyhow!("{}: it answered {:?}", hint(), text.trim()))?;
    Ok(format!("{address}/32"))
}

/// Checks a `--cidr` value: one IPv4 address as a /32, or with `allow_wide` a network of at
/// most 256 addresses (/24); never more of the internet.
pub fn check_cidr(cidr: &str, allow_wide: bool) -> Result<()> {
    let (address, bits) = cidr
        .split_once('/')
        .ok_or_else(|| anyhow!("--cidr {cidr}: write it as ADDRESS/32, e.g. 203.0.113.7/32"))?;
    let bits: u8 = bits
        .parse()
        .ok()
        .filter(|b| *b <= 32)
        .ok_or_else(|| anyhow!("--cidr {cidr}: BITS must be 0 to 32"))?;
    address
        .parse::<std::net::Ipv4Addr>()
        .map_err(|_| anyhow!("--cidr {cidr}: {address} is not an IPv4 address"))?;
    if bits < 24 {
        bail!(
            "--cidr {cidr}: refusing to open the warehouse to so much of the internet; use your \
             address/32 (or at most a /24 with --allow-wide-cidr)"
        );
    }
    if bits < 32 && !allow_wide {
        bail!(
            "--cidr {cidr}: opens the port to {} addresses; use your address/32, or pass \
             --allow-wide-cidr to mean it",
            1u32 << (32 - bits)
        );
    }
    Ok(())
}

/// Checks `--ip-endpoint`: the answer decides which address may reach the warehouse, so it is
/// asked over https only.
pub fn check_ip_endpoint(endpoint: &str) -> Result<()> {
    if !endpoint.to_ascii_lowercase().starts_with("https://") {
        bail!(
            "--ip-endpoint {endpoint}: must be an https:// URL, since its answer decides who may \
             connect to the warehouse"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_checks() {
        assert!(check_cidr("203.0.113.7/32", false).is_ok());
        assert!(check_cidr("203.0.113.0/24", false).is_err());
        assert!(check_cidr("203.0.113.0/24", true).is_ok());
        assert!(check_cidr("203.0.0.0/16", true).is_err());
        assert!(check_cidr("0.0.0.0/0", true).is_err());
        assert!(check_cidr("203.0.113.7", false).is_err());
        assert!(check_cidr("::1/128", false).is_err());
        assert!(check_ip_endpoint("https://checkip.amazonaws.com").is_ok());
        assert!(check_ip_endpoint("http://checkip.amazonaws.com").is_err());
    }

    #[test]
    fn the_rule_description_uses_only_what_ec2_allows() {
        let description = ingress_description("sparkify-workgroup");
        let allowed = |c: char| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c);
        assert!(description.chars().all(allowed), "{description}");
        assert!(description.len() <= 255);
        assert!(description.contains("sparkify-workgroup"));
    }
}
