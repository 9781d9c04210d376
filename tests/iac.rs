//! The AWS control plane (IAM, Redshift Serverless, EC2) and the Redshift Data API cannot be
//! reached from here, so every interaction is driven by aws-smithy-mocks: each test scripts what
//! the services answer and checks what the steps did and asked for.

use std::time::Duration;

use aws_sdk_ec2::operation::authorize_security_group_ingress::{
    AuthorizeSecurityGroupIngressError, AuthorizeSecurityGroupIngressOutput,
};
use aws_sdk_ec2::operation::describe_security_group_rules::DescribeSecurityGroupRulesOutput;
use aws_sdk_ec2::operation::revoke_security_group_ingress::RevokeSecurityGroupIngressOutput;
use aws_sdk_ec2::types::SecurityGroupRule;
use aws_sdk_iam::error::ErrorMetadata;
use aws_sdk_iam::operation::create_role::CreateRoleOutput;
use aws_sdk_iam::operation::delete_role::{DeleteRoleError, DeleteRoleOutput};
use aws_sdk_iam::operation::delete_role_policy::{DeleteRolePolicyError, DeleteRolePolicyOutput};
use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
use aws_sdk_iam::operation::get_role_policy::{GetRolePolicyError, GetRolePolicyOutput};
use aws_sdk_iam::operation::put_role_policy::PutRolePolicyOutput;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_iam::types::Role;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::operation::execute_statement::{
    ExecuteStatementError, ExecuteStatementOutput,
};
use aws_sdk_redshiftdata::operation::get_statement_result::GetStatementResultOutput;
use aws_sdk_redshiftdata::types::{ColumnMetadata, Field, StatusString};
use aws_sdk_redshiftserverless::operation::create_namespace::{
    CreateNamespaceError, CreateNamespaceOutput,
};
use aws_sdk_redshiftserverless::operation::create_workgroup::CreateWorkgroupOutput;
use aws_sdk_redshiftserverless::operation::delete_namespace::DeleteNamespaceOutput;
use aws_sdk_redshiftserverless::operation::delete_workgroup::{
    DeleteWorkgroupError, DeleteWorkgroupOutput,
};
use aws_sdk_redshiftserverless::operation::get_namespace::{GetNamespaceError, GetNamespaceOutput};
use aws_sdk_redshiftserverless::operation::get_workgroup::{GetWorkgroupError, GetWorkgroupOutput};
use aws_sdk_redshiftserverless::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_redshiftserverless::types::error::{
    ConflictException, ResourceNotFoundException, ValidationException,
};
use aws_sdk_redshiftserverless::types::{
    Endpoint, Namespace, NamespaceStatus, Workgroup, WorkgroupStatus,
};
use aws_smithy_mocks::{mock, Rule};
use sparkify::config::{Config, Secret};
use sparkify::iac::{self, Change, Clients, Collect, CreatePlan, DeletePlan, Timing};
use sparkify::warehouse::{Polling, RedshiftDataWarehouse, Target, Warehouse};

#[path = "common/s3_server.rs"]
mod s3_server;

#[macro_use]
#[path = "common/mock_client.rs"]
mod mock_client;

const PASSWORD: &str = "Sentinel-Passw0rd-987";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read";
const HOST: &str = "sparkify-workgroup.123456789012.us-west-2.redshift-serverless.amazonaws.com";
/// The instance id of the config the tests run with ([DWH] DWH_INSTANCE_ID).
const INSTANCE: &str = "0123456789abcdef";

fn config() -> Config {
    Config::parse(
        &format!(
            "[CLUSTER]\nHOST=\nDB_NAME=dwh\nDB_USER=dwhuser\nDB_PASSWORD={PASSWORD}\n\
             [S3]\nLOG_DATA=s3://udacity-dend/log_data\nSONG_DATA=s3://udacity-dend/song_data\n\
             LOG_JSONPATH=s3://udacity-dend/log_json_path.json\n\
             [AWS]\nKEY=AKIDEXAMPLE\nSECRET=sentinel-secret-key\n\
             [DWH]\nDWH_REGION=us-west-2\nDWH_INSTANCE_ID={INSTANCE}\n"
        ),
        "dwh.cfg".as_ref(),
        "/".as_ref(),
    )
    .unwrap()
}

/// Fast timing: the scripted services answer at once.
fn timing() -> Timing {
    Timing {
        timeout: Duration::from_millis(300),
        poll: Duration::from_millis(1),
        backoff: Duration::from_millis(1),
        attempts: 4,
    }
}

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// The role as iac_create made it from this config: tagged as its own.
fn role() -> Role {
    role_tagged(&[
        (iac::OWNER_TAG_KEY, iac::OWNER_TAG_VALUE),
        (iac::CONFIG_TAG_KEY, "dwh.cfg"),
        (iac::INSTANCE_TAG_KEY, INSTANCE),
    ])
}

fn role_tagged(tags: &[(&str, &str)]) -> Role {
    let mut role = Role::builder()
        .path("/")
        .role_name("sparkify-redshift-s3-read")
        .role_id("AROAEXAMPLE")
        .arn(ROLE_ARN)
        .create_date(aws_sdk_iam::primitives::DateTime::from_secs(0));
    for (key, value) in tags {
        role = role.tags(
            aws_sdk_iam::types::Tag::builder()
                .key(*key)
                .value(*value)
                .build()
                .unwrap(),
        );
    }
    role.build().unwrap()
}

const NAMESPACE_ARN: &str =
    "arn:aws:redshift-serverless:us-west-2:123456789012:namespace/11111111-2222-3333-4444-555555555555";
const WORKGROUP_ARN: &str =
    "arn:aws:redshift-serverless:us-west-2:123456789012:workgroup/66666666-7777-8888-9999-000000000000";

fn tags_output(tags: &[(&str, &str)]) -> ListTagsForResourceOutput {
    let mut out = ListTagsForResourceOutput::builder();
    for (key, value) in tags {
        out = out.tags(
            aws_sdk_redshiftserverless::types::Tag::builder()
                .key(*key)
                .value(*value)
                .build()
                .unwrap(),
        );
    }
    out.build()
}

/// Every namespace and workgroup asked about carries the tags iac_create gave it for this
/// config.
fn owned_tags() -> Rule {
    mock!(aws_sdk_redshiftserverless::Client::list_tags_for_resource).then_output(|| {
        tags_output(&[
            (iac::OWNER_TAG_KEY, iac::OWNER_TAG_VALUE),
            (iac::INSTANCE_TAG_KEY, INSTANCE),
        ])
    })
}

/// Whether a create request carries iac_create's owner tag and this config's instance id.
fn tagged<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    let tags: Vec<_> = tags.collect();
    tags.contains(&(iac::OWNER_TAG_KEY, iac::OWNER_TAG_VALUE))
        && tags.contains(&(iac::INSTANCE_TAG_KEY, INSTANCE))
}

fn namespace(status: &str) -> Namespace {
    Namespace::builder()
        .namespace_name("sparkify-namespace")
        .iam_roles(format!(
            "IamRole(applyStatus=in-sync, iamRoleArn={ROLE_ARN})"
        ))
        .default_iam_role_arn(ROLE_ARN)
        .namespace_arn(NAMESPACE_ARN)
        .status(NamespaceStatus::from(status))
        .build()
}

fn workgroup(status: &str) -> Workgroup {
    Workgroup::builder()
        .workgroup_name("sparkify-workgroup")
        .workgroup_arn(WORKGROUP_ARN)
        .security_group_ids("sg-0123")
        .status(WorkgroupStatus::from(status))
        .endpoint(Endpoint::builder().address(HOST).port(5439).build())
        .build()
}

/// Redshift Serverless's answer for a resource that does not exist, as the SDK parses it.
fn not_found() -> ResourceNotFoundException {
    ResourceNotFoundException::builder()
        .message("not found")
        .meta(meta("ResourceNotFoundException", "not found"))
        .build()
        .unwrap()
}

fn not_found_namespace() -> GetNamespaceError {
    GetNamespaceError::ResourceNotFoundException(not_found())
}

fn not_found_workgroup() -> GetWorkgroupError {
    GetWorkgroupError::ResourceNotFoundException(not_found())
}

/// IAM's answer for a role or policy that does not exist.
fn no_such_entity() -> NoSuchEntityException {
    NoSuchEntityException::builder()
        .meta(meta("NoSuchEntity", "none"))
        .build()
}

fn no_such_role() -> GetRoleError {
    GetRoleError::NoSuchEntityException(no_such_entity())
}

fn policy_of(plan: &CreatePlan) -> GetRolePolicyOutput {
    GetRolePolicyOutput::builder()
        .role_name("sparkify-redshift-s3-read")
        .policy_name(iac::POLICY_NAME)
        .policy_document(plan.policy.replace('"', "%22").replace(':', "%3A"))
        .build()
        .unwrap()
}

/// STS's answer to GetCallerIdentity: the account of the test role.
fn caller_identity() -> Rule {
    mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
            .account("123456789012")
            .build()
    })
}

struct Mocks {
    iam: Vec<Rule>,
    serverless: Vec<Rule>,
    ec2: Vec<Rule>,
}

/// The usage limits of a workgroup that has none yet: listed empty, created, deleted. Every
/// client of [`Mocks`] answers them after the test's own rules (a test's own rule for one of
/// them comes first and wins).
fn no_usage_limit_yet() -> Vec<Rule> {
    use aws_sdk_redshiftserverless::operation::{
        create_usage_limit::CreateUsageLimitOutput, delete_usage_limit::DeleteUsageLimitOutput,
        list_usage_limits::ListUsageLimitsOutput,
    };
    vec![
        mock!(aws_sdk_redshiftserverless::Client::list_usage_limits)
            .then_output(|| ListUsageLimitsOutput::builder().build()),
        mock!(aws_sdk_redshiftserverless::Client::create_usage_limit)
            .then_output(|| CreateUsageLimitOutput::builder().build()),
        mock!(aws_sdk_redshiftserverless::Client::delete_usage_limit)
            .then_output(|| DeleteUsageLimitOutput::builder().build()),
    ]
}

/// The workgroup's usage limit as iac_create made it.
fn one_usage_limit() -> Rule {
    use aws_sdk_redshiftserverless::operation::list_usage_limits::ListUsageLimitsOutput;
    mock!(aws_sdk_redshiftserverless::Client::list_usage_limits).then_output(|| {
        ListUsageLimitsOutput::builder()
            .usage_limits(
                aws_sdk_redshiftserverless::types::UsageLimit::builder()
                    .usage_limit_id("limit-1")
                    .amount(24)
                    .build(),
            )
            .build()
    })
}

impl Mocks {
    fn clients(&self) -> Clients {
        let serverless: Vec<Rule> = self
            .serverless
            .iter()
            .cloned()
            .chain(no_usage_limit_yet())
            .collect();
        Clients {
            iam: mock_client!(aws_sdk_iam, &self.iam),
            serverless: mock_client!(aws_sdk_redshiftserverless, &serverless),
            ec2: mock_client!(aws_sdk_ec2, &self.ec2),
            sts: mock_client!(aws_sdk_sts, &[caller_identity()]),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn plan(ingress: bool) -> CreatePlan {
    CreatePlan::new(
        &config(),
        false,
        ingress.then(|| "203.0.113.7/32".to_string()),
        timing(),
    )
    .unwrap()
}

#[test]
fn create_builds_everything_in_order_from_nothing() {
    let plan = plan(true);
    let create_namespace = mock!(aws_sdk_redshiftserverless::Client::create_namespace)
        .match_requests(|r| {
            r.admin_user_password() == Some(PASSWORD)
                && r.default_iam_role_arn() == Some(ROLE_ARN)
                && r.db_name() == Some("dwh")
                && tagged(r.tags().iter().map(|t| (t.key(), t.value())))
        })
        .then_output(|| CreateNamespaceOutput::builder().build());
    let create_workgroup = mock!(aws_sdk_redshiftserverless::Client::create_workgroup)
        .match_requests(|r| {
            r.base_capacity() == Some(8)
                // No ceiling set: it scales to no more than the base.
                && r.max_capacity() == Some(8)
                && tagged(r.tags().iter().map(|t| (t.key(), t.value())))
                && r.config_parameters().iter().any(|p| {
                    p.parameter_key() == Some("require_ssl") && p.parameter_value() == Some("true")
                })
        })
        .then_output(|| CreateWorkgroupOutput::builder().build());
    let authorize = mock!(aws_sdk_ec2::Client::authorize_security_group_ingress)
        .match_requests(|r| {
            r.group_id() == Some("sg-0123")
                && r.ip_permissions().first().is_some_and(|p| {
                    p.from_port() == Some(5439)
                        && p.ip_ranges()[0].cidr_ip() == Some("203.0.113.7/32")
                        && p.ip_ranges()[0].description()
                            == Some(iac::ingress_description("sparkify-workgroup").as_str())
                })
        })
        .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().build());
    let put_policy = mock!(aws_sdk_iam::Client::put_role_policy)
        .match_requests(|r| {
            r.policy_document().is_some_and(|d| {
                d.contains("s3:ListBucket") && d.contains("arn:aws:s3:::udacity-dend/log_data/*")
            })
        })
        .then_output(|| PutRolePolicyOutput::builder().build());
    let mocks = Mocks {
        iam: vec![
            mock!(aws_sdk_iam::Client::get_role).then_error(no_such_role),
            mock!(aws_sdk_iam::Client::create_role)
                .match_requests(|r| {
                    tagged(r.tags().iter().map(|t| (t.key(), t.value())))
                        && r.assume_role_policy_document().is_some_and(|d| {
                            d.contains(
                                r#""StringEqualsIfExists":{"aws:SourceAccount":"123456789012"}"#,
                            )
                        })
                })
                .then_output(|| CreateRoleOutput::builder().role(role()).build()),
            mock!(aws_sdk_iam::Client::get_role_policy)
                .then_error(|| GetRolePolicyError::NoSuchEntityException(no_such_entity())),
            put_policy,
        ],
        serverless: vec![
            // Looked up before creation; then available at once.
            mock!(aws_sdk_redshiftserverless::Client::get_namespace)
                .sequence()
                .error(not_found_namespace)
                .output(|| {
                    GetNamespaceOutput::builder()
                        .namespace(namespace("AVAILABLE"))
                        .build()
                })
                .repeatedly()
                .build(),
            create_namespace,
            // Missing, then (after creation) CREATING twice, then AVAILABLE.
            mock!(aws_sdk_redshiftserverless::Client::get_workgroup)
                .sequence()
                .error(not_found_workgroup)
                .output(|| {
                    GetWorkgroupOutput::builder()
                        .workgroup(workgroup("CREATING"))
                        .build()
                })
                .times(3)
                .output(|| {
                    GetWorkgroupOutput::builder()
                        .workgroup(workgroup("AVAILABLE"))
                        .build()
                })
                .repeatedly()
                .build(),
            create_workgroup,
            // A daily compute limit that stops queries when reached.
            mock!(aws_sdk_redshiftserverless::Client::create_usage_limit)
                .match_requests(|r| {
                    r.resource_arn() == Some(WORKGROUP_ARN)
                        && r.amount() == Some(24)
                        && r.period()
                            == Some(&aws_sdk_redshiftserverless::types::UsageLimitPeriod::Daily)
                        && r.breach_action()
                            == Some(
                                &aws_sdk_redshiftserverless::types::UsageLimitBreachAction::Deactivate,
                            )
                        && r.usage_type()
                            == Some(
                                &aws_sdk_redshiftserverless::types::UsageLimitUsageType::ServerlessCompute,
                            )
                })
                .then_output(|| {
                    aws_sdk_redshiftserverless::operation::create_usage_limit::CreateUsageLimitOutput::builder().build()
                }),
        ],
        ec2: vec![authorize],
    };
    let clients = mocks.clients();
    let report = Collect::default();
    let created = runtime()
        .block_on(iac::create(&clients, &plan, &report))
        .unwrap();
    assert_eq!(created.host, HOST);
    assert_eq!(created.port, 5439);
    assert_eq!(created.role_arn, ROLE_ARN);
    assert!(created.changed);
    let steps = report.0.lock().unwrap();
    let changes: Vec<Change> = steps.iter().map(|s| s.change).collect();
    assert_eq!(
        changes,
        [
            Change::Created,
            Change::Created,
            Change::Created,
            Change::Created,
            Change::Created,
            Change::Created,
            Change::Unchanged
        ],
        "{steps:#?}"
    );
    assert!(steps[4].what.contains("24 RPU-hours a day"), "{steps:#?}");
    assert!(steps[5].what.contains("203.0.113.7/32"));
    for rule in mocks.iam.iter().chain(&mocks.serverless).chain(&mocks.ec2) {
        assert!(rule.num_calls() > 0, "a step was skipped");
    }
    let shown = format!("{steps:?} {plan:?} {:?}", plan.describe());
    assert!(!shown.contains(PASSWORD), "the password was shown");
}

/// Everything exists: nothing is created and the run says so.
fn existing() -> Mocks {
    let plan = plan(true);
    Mocks {
        iam: vec![
            mock!(aws_sdk_iam::Client::get_role)
                .then_output(|| GetRoleOutput::builder().role(role()).build()),
            mock!(aws_sdk_iam::Client::get_role_policy).then_output(move || policy_of(&plan)),
        ],
        serverless: vec![
            mock!(aws_sdk_redshiftserverless::Client::get_namespace).then_output(|| {
                GetNamespaceOutput::builder()
                    .namespace(namespace("AVAILABLE"))
                    .build()
            }),
            mock!(aws_sdk_redshiftserverless::Client::get_workgroup).then_output(|| {
                GetWorkgroupOutput::builder()
                    .workgroup(workgroup("AVAILABLE"))
                    .build()
            }),
            owned_tags(),
            one_usage_limit(),
        ],
        ec2: vec![
            mock!(aws_sdk_ec2::Client::authorize_security_group_ingress).then_error(|| {
                AuthorizeSecurityGroupIngressError::generic(meta(
                    "InvalidPermission.Duplicate",
                    "the specified rule already exists",
                ))
            }),
        ],
    }
}

#[test]
fn a_second_create_changes_nothing_and_a_duplicate_rule_is_success() {
    let mocks = existing();
    let report = Collect::default();
    let created = runtime()
        .block_on(iac::create(&mocks.clients(), &plan(true), &report))
        .unwrap();
    assert!(!created.changed);
    assert!(report
        .0
        .lock()
        .unwrap()
        .iter()
        .all(|s| s.change == Change::Unchanged));
}

#[test]
fn an_existing_namespace_gets_the_role_as_a_plain_arn_whatever_shape_it_lists_roles_in() {
    const OTHER: &str = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read-old";
    for described in [
        format!("IamRole(applyStatus=in-sync, iamRoleArn={OTHER})"),
        format!("IamRole(iamRoleArn={OTHER}, applyStatus=in-sync)"),
    ] {
        // The namespace holds another role whose ARN starts with ours: ours is not attached.
        let mut mocks = existing();
        mocks.serverless[0] =
            mock!(aws_sdk_redshiftserverless::Client::get_namespace).then_output(move || {
                GetNamespaceOutput::builder()
                    .namespace(
                        Namespace::builder()
                            .namespace_name("sparkify-namespace")
                            .iam_roles(described.clone())
                            .default_iam_role_arn(OTHER)
                            .status(NamespaceStatus::Available)
                            .build(),
                    )
                    .build()
            });
        mocks.serverless.push(
            mock!(aws_sdk_redshiftserverless::Client::update_namespace)
                .match_requests(|r| {
                    r.iam_roles() == [OTHER, ROLE_ARN] && r.default_iam_role_arn() == Some(ROLE_ARN)
                })
                .then_output(|| {
                    aws_sdk_redshiftserverless::operation::update_namespace::UpdateNamespaceOutput::builder()
                        .namespace(namespace("AVAILABLE"))
                        .build()
                }),
        );
        let report = Collect::default();
        runtime()
            .block_on(iac::create(&mocks.clients(), &plan(true), &report))
            .unwrap();
        assert_eq!(
            mocks.serverless[3].num_calls(),
            1,
            "UpdateNamespace with plain ARNs"
        );
        assert!(report
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.change == Change::Updated));
    }
}

#[test]
fn a_role_not_yet_assumable_is_retried() {
    let mut mocks = existing();
    mocks.serverless = vec![
        mock!(aws_sdk_redshiftserverless::Client::get_namespace)
            .sequence()
            .error(not_found_namespace)
            .output(|| {
                GetNamespaceOutput::builder()
                    .namespace(namespace("AVAILABLE"))
                    .build()
            })
            .repeatedly()
            .build(),
        mock!(aws_sdk_redshiftserverless::Client::create_namespace)
            .sequence()
            .error(|| {
                let message = "IAM role arn:... cannot be assumed by Redshift yet";
                CreateNamespaceError::ValidationException(
                    ValidationException::builder()
                        .message(message)
                        .meta(meta("ValidationException", message))
                        .build()
                        .unwrap(),
                )
            })
            .times(2)
            .output(|| CreateNamespaceOutput::builder().build())
            .build(),
        mock!(aws_sdk_redshiftserverless::Client::get_workgroup).then_output(|| {
            GetWorkgroupOutput::builder()
                .workgroup(workgroup("AVAILABLE"))
                .build()
        }),
        owned_tags(),
    ];
    let report = Collect::default();
    runtime()
        .block_on(iac::create(&mocks.clients(), &plan(true), &report))
        .unwrap();
    assert_eq!(
        mocks.serverless[1].num_calls(),
        3,
        "two refusals, then success"
    );
}

fn workgroup_stuck(status: &'static str) -> Mocks {
    let mut mocks = existing();
    mocks.serverless[1] =
        mock!(aws_sdk_redshiftserverless::Client::get_workgroup).then_output(move || {
            GetWorkgroupOutput::builder()
                .workgroup(workgroup(status))
                .build()
        });
    mocks
}

#[test]
fn a_workgroup_stuck_creating_times_out_and_failed_stops_at_once() {
    let err = runtime()
        .block_on(iac::create(
            &workgroup_stuck("CREATING").clients(),
            &plan(true),
            &Collect::default(),
        ))
        .unwrap_err()
        .to_string();
    assert!(err.contains("still not available"), "{err}");
    assert!(err.contains("workgroup CREATING"), "{err}");
    let mocks = workgroup_stuck("FAILED");
    let err = runtime()
        .block_on(iac::create(
            &mocks.clients(),
            &plan(true),
            &Collect::default(),
        ))
        .unwrap_err()
        .to_string();
    assert!(err.contains("workgroup FAILED"), "{err}");
    assert!(
        mocks.serverless[1].num_calls() <= 3,
        "kept polling a failed workgroup"
    );
}

fn delete_plan(keep_role: bool) -> DeletePlan {
    DeletePlan::new(&config(), keep_role, Some("final".into()), timing())
}

#[test]
fn delete_retries_busy_resources_waits_until_gone_and_revokes_only_its_rule() {
    let rule = |id: &str, description: &str| {
        SecurityGroupRule::builder()
            .security_group_rule_id(id)
            .is_egress(false)
            .description(description)
            .build()
    };
    let mocks = Mocks {
        iam: vec![
            mock!(aws_sdk_iam::Client::delete_role_policy)
                .then_output(|| DeleteRolePolicyOutput::builder().build()),
            mock!(aws_sdk_iam::Client::delete_role)
                .then_output(|| DeleteRoleOutput::builder().build()),
            mock!(aws_sdk_iam::Client::get_role)
                .then_output(|| GetRoleOutput::builder().role(role()).build()),
        ],
        serverless: vec![
            mock!(aws_sdk_redshiftserverless::Client::get_workgroup)
                .sequence()
                .output(|| {
                    GetWorkgroupOutput::builder()
                        .workgroup(workgroup("AVAILABLE"))
                        .build()
                })
                .output(|| {
                    GetWorkgroupOutput::builder()
                        .workgroup(workgroup("DELETING"))
                        .build()
                })
                .error(not_found_workgroup)
                .repeatedly()
                .build(),
            mock!(aws_sdk_redshiftserverless::Client::delete_workgroup)
                .sequence()
                .error(|| {
                    DeleteWorkgroupError::ConflictException(
                        ConflictException::builder()
                            .message("busy")
                            .meta(meta("ConflictException", "busy"))
                            .build()
                            .unwrap(),
                    )
                })
                .times(2)
                .output(|| DeleteWorkgroupOutput::builder().build())
                .build(),
            mock!(aws_sdk_redshiftserverless::Client::get_namespace)
                .sequence()
                .output(|| {
                    GetNamespaceOutput::builder()
                        .namespace(namespace("AVAILABLE"))
                        .build()
                })
                .error(not_found_namespace)
                .repeatedly()
                .build(),
            mock!(aws_sdk_redshiftserverless::Client::delete_namespace)
                .match_requests(|r| r.final_snapshot_name() == Some("final"))
                .then_output(|| DeleteNamespaceOutput::builder().build()),
            owned_tags(),
            one_usage_limit(),
            mock!(aws_sdk_redshiftserverless::Client::delete_usage_limit)
                .match_requests(|r| r.usage_limit_id() == Some("limit-1"))
                .then_output(|| {
                    aws_sdk_redshiftserverless::operation::delete_usage_limit::DeleteUsageLimitOutput::builder().build()
                }),
        ],
        ec2: vec![
            mock!(aws_sdk_ec2::Client::describe_security_group_rules).then_output(move || {
                DescribeSecurityGroupRulesOutput::builder()
                    .security_group_rules(rule(
                        "sgr-ours",
                        &iac::ingress_description("sparkify-workgroup"),
                    ))
                    .security_group_rules(rule("sgr-other", "someone else's"))
                    .build()
            }),
            mock!(aws_sdk_ec2::Client::revoke_security_group_ingress)
                .match_requests(|r| r.security_group_rule_ids() == ["sgr-ours"])
                .then_output(|| RevokeSecurityGroupIngressOutput::builder().build()),
        ],
    };
    let report = Collect::default();
    runtime()
        .block_on(iac::delete(&mocks.clients(), &delete_plan(false), &report))
        .unwrap();
    assert_eq!(
        mocks.serverless[1].num_calls(),
        3,
        "two conflicts, then deleted"
    );
    assert_eq!(mocks.ec2[1].num_calls(), 1);
    let steps = report.0.lock().unwrap();
    assert!(
        steps[0].what.contains("ingress rule"),
        "the rule is revoked before the workgroup is deleted: {steps:#?}"
    );
    let changes: Vec<Change> = steps.iter().map(|s| s.change).collect();
    // Rule, usage limit, workgroup, namespace, role.
    assert_eq!(
        changes,
        [
            Change::Deleted,
            Change::Deleted,
            Change::Deleted,
            Change::Deleted,
            Change::Deleted
        ]
    );
    assert!(steps[1].what.contains("usage limits"), "{steps:#?}");
    assert_eq!(
        mocks.serverless.last().unwrap().num_calls(),
        1,
        "the workgroup's usage limit deleted"
    );
}

#[test]
fn deleting_what_is_already_gone_is_success() {
    let mocks = Mocks {
        iam: vec![
            mock!(aws_sdk_iam::Client::delete_role_policy)
                .then_error(|| DeleteRolePolicyError::NoSuchEntityException(no_such_entity())),
            mock!(aws_sdk_iam::Client::delete_role)
                .then_error(|| DeleteRoleError::NoSuchEntityException(no_such_entity())),
            mock!(aws_sdk_iam::Client::get_role).then_error(no_such_role),
        ],
        serverless: vec![
            mock!(aws_sdk_redshiftserverless::Client::get_workgroup)
                .then_error(not_found_workgroup),
            mock!(aws_sdk_redshiftserverless::Client::get_namespace)
                .then_error(not_found_namespace),
        ],
        ec2: vec![],
    };
    let report = Collect::default();
    runtime()
        .block_on(iac::delete(&mocks.clients(), &delete_plan(false), &report))
        .unwrap();
    let changes: Vec<Change> = report.0.lock().unwrap().iter().map(|s| s.change).collect();
    assert_eq!(
        changes,
        [
            Change::AlreadyGone,
            Change::AlreadyGone,
            Change::AlreadyGone
        ]
    );
}

#[test]
fn create_leaves_a_role_it_did_not_make_alone_unless_adopting() {
    let foreign = || {
        mock!(aws_sdk_iam::Client::get_role).then_output(|| {
            GetRoleOutput::builder()
                .role(role_tagged(&[("team", "analytics")]))
                .build()
        })
    };
    let mut mocks = existing();
    mocks.iam[0] = foreign();
    let err = runtime()
        .block_on(iac::create(
            &mocks.clients(),
            &plan(true),
            &Collect::default(),
        ))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("IAM role sparkify-redshift-s3-read exists but was not made by iac_create"),
        "{err}"
    );
    assert!(
        err.contains("--adopt") && err.contains("DWH_IAM_ROLE_NAME"),
        "{err}"
    );
    for rule in mocks.serverless.iter().chain(&mocks.ec2) {
        assert_eq!(
            rule.num_calls(),
            0,
            "went on past a role that is not its own"
        );
    }

    let mut mocks = existing();
    mocks.iam[0] = foreign();
    mocks.iam.push(
        mock!(aws_sdk_iam::Client::tag_role)
            .match_requests(|r| {
                r.tags()
                    .iter()
                    .any(|t| t.key() == iac::OWNER_TAG_KEY && t.value() == iac::OWNER_TAG_VALUE)
            })
            .then_output(|| aws_sdk_iam::operation::tag_role::TagRoleOutput::builder().build()),
    );
    let mut adopting = plan(true);
    adopting.adopt = true;
    let report = Collect::default();
    runtime()
        .block_on(iac::create(&mocks.clients(), &adopting, &report))
        .unwrap();
    assert_eq!(mocks.iam[2].num_calls(), 1, "tagged as iac_create's");
    assert_eq!(report.0.lock().unwrap()[0].change, Change::Adopted);
}

/// An iac_delete of the configured names where the role is `role`, the workgroup and the
/// namespace exist and their tags come from `tags`: the error it stops with, and the mocks
/// (which hold no delete call: an unmatched call would fail the run another way).
fn delete_refused(role: Role, tags: Vec<Rule>) -> (String, Mocks) {
    let mut serverless = vec![
        mock!(aws_sdk_redshiftserverless::Client::get_workgroup).then_output(|| {
            GetWorkgroupOutput::builder()
                .workgroup(workgroup("AVAILABLE"))
                .build()
        }),
        mock!(aws_sdk_redshiftserverless::Client::get_namespace).then_output(|| {
            GetNamespaceOutput::builder()
                .namespace(namespace("AVAILABLE"))
                .build()
        }),
    ];
    serverless.extend(tags);
    let mocks = Mocks {
        iam: vec![mock!(aws_sdk_iam::Client::get_role)
            .then_output(move || GetRoleOutput::builder().role(role.clone()).build())],
        serverless,
        ec2: vec![],
    };
    let err = runtime()
        .block_on(iac::delete(
            &mocks.clients(),
            &delete_plan(false),
            &Collect::default(),
        ))
        .unwrap_err()
        .to_string();
    (err, mocks)
}

#[test]
fn delete_removes_nothing_when_a_resource_is_not_its_own() {
    let (err, mocks) = delete_refused(
        role(),
        vec![
            // The workgroup carries someone else's tags only.
            mock!(aws_sdk_redshiftserverless::Client::list_tags_for_resource)
                .match_requests(|r| r.resource_arn() == Some(WORKGROUP_ARN))
                .then_output(|| tags_output(&[("team", "analytics")])),
            owned_tags(),
        ],
    );
    assert!(
        err.contains("workgroup sparkify-workgroup exists but was not made by iac_create"),
        "{err}"
    );
    // Only looked.
    assert_eq!(mocks.serverless[0].num_calls(), 1);
}

/// Two users of one account who both keep the default names: the second one's iac_delete
/// finds resources iac_create made, but from the first one's config (another instance id),
/// and deletes nothing.
#[test]
fn delete_leaves_what_another_configs_iac_create_made_alone() {
    let theirs = [
        (iac::OWNER_TAG_KEY, iac::OWNER_TAG_VALUE),
        (iac::CONFIG_TAG_KEY, "dwh.cfg"),
        (iac::INSTANCE_TAG_KEY, "fedcba9876543210"),
    ];
    // An older iac_create tagged no instance: it may be anyone's.
    let no_id = [(iac::OWNER_TAG_KEY, iac::OWNER_TAG_VALUE)];
    for (label, tags) in [("another config's id", &theirs[..]), ("no id", &no_id[..])] {
        let output = tags_output(tags);
        let (err, _) = delete_refused(
            role(),
            vec![
                mock!(aws_sdk_redshiftserverless::Client::list_tags_for_resource)
                    .then_output(move || output.clone()),
            ],
        );
        assert!(
            err.contains("workgroup sparkify-workgroup exists but was made by iac_create"),
            "{label}: {err}"
        );
        assert!(err.contains("--adopt"), "{label}: {err}");
    }
    // The same names, another config's id on the role only: the role is refused too.
    let (err, _) = delete_refused(role_tagged(&theirs), vec![owned_tags()]);
    assert!(
        err.contains(
            "IAM role sparkify-redshift-s3-read exists but was made by iac_create from another \
             config"
        ),
        "{err}"
    );
}

/// A config without an instance id owns nothing: iac_delete refuses before any AWS call, and
/// says what to do; the dry run says so too.
#[test]
fn iac_delete_without_an_instance_id_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dwh.cfg");
    std::fs::write(
        &path,
        "[DWH]\nDWH_REGION=us-west-2\n[AWS]\nKEY=AKIDEXAMPLE\nSECRET=s\n",
    )
    .unwrap();
    let (code, _, stderr) = iac_offline("iac_delete", &path, &["--yes"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("nothing was deleted") && stderr.contains("DWH_INSTANCE_ID is empty"),
        "{stderr}"
    );
    assert!(stderr.contains("--adopt"), "{stderr}");
    let (code, stdout, stderr) = iac_offline("iac_delete", &path, &["--dry-run"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("none: nothing will be deleted"),
        "{stdout}{stderr}"
    );
}

/// `iac_create` or `iac_delete` on `config`, with no AWS credentials anywhere and every AWS
/// endpoint a closed port (any call would fail), so only the checks before any change run.
fn iac_offline(
    binary: &str,
    config: &std::path::Path,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin(binary))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("HOME", home.path())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn iac_create_lists_every_problem_before_any_change_and_the_dry_run_shows_them_with_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dwh.cfg");
    // The shipped config: an empty password, no credentials here.
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dwh.cfg"),
        &path,
    )
    .unwrap();
    let (code, stdout, stderr) = iac_offline(
        "iac_create",
        &path,
        &["--dry-run", "--cidr", "203.0.113.7/32"],
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("iac_create would, in region us-west-2:"),
        "{stdout}"
    );
    assert!(stdout.contains("namespace sparkify-namespace"), "{stdout}");
    assert!(stdout.contains("Before a real run, fix:"), "{stdout}");
    assert!(
        stdout.contains("[CLUSTER] DB_PASSWORD is empty"),
        "{stdout}"
    );
    assert!(stdout.contains("no AWS credentials were found"), "{stdout}");
    assert!(
        stdout.contains("Nothing was changed (--dry-run)."),
        "{stdout}"
    );
    assert!(
        stderr.contains("2 problems to fix before a real run"),
        "{stderr}"
    );

    // A weak password, a base capacity Redshift does not offer and a region that is not one:
    // all listed at once, nothing called.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("DB_PASSWORD =\n", "DB_PASSWORD = weakpass\n")
        .replace(
            "DWH_BASE_CAPACITY = 8\n",
            "DWH_BASE_CAPACITY = 12\nDWH_MAX_CAPACITY = 4\n",
        );
    std::fs::write(&path, text).unwrap();
    let (code, stdout, stderr) = iac_offline(
        "iac_create",
        &path,
        &["--cidr", "203.0.113.7/32", "--region", "mars-north-1"],
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("error: nothing was changed; fix first:"),
        "{stderr}"
    );
    for problem in [
        "DB_PASSWORD (not shown) has no upper-case letter, has no digit",
        "the region \"mars-north-1\" is not an AWS region the SDK knows",
        "[DWH] DWH_BASE_CAPACITY is 12 RPUs: Redshift Serverless takes 4, 8 to 512 in steps of 8",
        "[DWH] DWH_MAX_CAPACITY is 4 RPUs, below DWH_BASE_CAPACITY (12)",
        "no AWS credentials were found",
    ] {
        assert!(stderr.contains(problem), "{problem:?} not in {stderr}");
    }
    assert!(!stderr.contains("weakpass") && !stdout.contains("weakpass"));
    assert!(
        !stdout.contains("iac_create in region"),
        "started: {stdout}"
    );

    // iac_delete --dry-run lists what it would delete, without asking.
    let (code, stdout, stderr) = iac_offline("iac_delete", &path, &["--dry-run", "--keep-role"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("delete workgroup sparkify-workgroup"),
        "{stdout}"
    );
    assert!(
        stdout.contains("delete namespace sparkify-namespace with its data"),
        "{stdout}"
    );
    assert!(
        stdout.contains("keep IAM role sparkify-redshift-s3-read"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Nothing was deleted (--dry-run)."),
        "{stdout}"
    );
    assert!(stdout.contains("no AWS credentials were found"), "{stdout}");
}

#[test]
fn password_rules_are_redshifts() {
    assert!(iac::password_problems("Sentinel-Passw0rd-987").is_empty());
    assert_eq!(
        iac::password_problems("Sh0rt"),
        ["is shorter than 8 characters"]
    );
    assert_eq!(
        iac::password_problems("alllowercase1"),
        ["has no upper-case letter"]
    );
    assert_eq!(
        iac::password_problems("With Space1"),
        ["holds a character Redshift refuses"]
    );
    assert_eq!(
        iac::password_problems("At@Sign123"),
        ["holds a character Redshift refuses"]
    );
    assert_eq!(
        iac::password_problems(&format!("Aa1{}", "x".repeat(62))),
        ["is longer than 64 characters"]
    );
    assert!(iac::region_problem(Some("us-west-2")).is_none());
    assert!(iac::region_problem(Some("mars-north-1")).is_some());
    assert!(iac::region_problem(None).is_some());
    // Base capacity: 4, 8..=512 by 8, and 544..=1024 by 32 only where the guide allows it.
    for ok in [4, 8, 16, 128, 512] {
        assert_eq!(iac::capacity_problem(ok, Some("ap-south-1")), None, "{ok}");
    }
    for ok in [544, 1024] {
        assert_eq!(iac::capacity_problem(ok, Some("us-west-2")), None, "{ok}");
    }
    for bad in [0, -8, 2, 6, 12, 520, 1056, 2048] {
        let problem = iac::capacity_problem(bad, Some("us-west-2")).expect("refused");
        assert!(problem.contains("steps of 8"), "{bad}: {problem}");
    }
    let problem = iac::capacity_problem(1024, Some("ap-south-1")).unwrap();
    assert!(problem.contains("ap-south-1 does not offer"), "{problem}");
}

#[test]
fn iac_delete_in_a_script_needs_yes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dwh.cfg");
    std::fs::write(&path, "[DWH]\nDWH_REGION=us-west-2\n").unwrap();
    let out = assert_cmd::Command::cargo_bin("iac_delete")
        .unwrap()
        .arg("--config")
        .arg(&path)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .write_stdin("y\n")
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("pass --yes"), "{stderr}");
}

fn data_api(rules: &[Rule]) -> RedshiftDataWarehouse {
    let client = mock_client!(aws_sdk_redshiftdata, rules);
    RedshiftDataWarehouse::with_client(
        runtime(),
        client,
        Target::Workgroup("sparkify-workgroup".into()),
        "dwh".into(),
        fast_polling(),
    )
}

fn fast_polling() -> Polling {
    Polling {
        first: Duration::from_millis(1),
        max: Duration::from_millis(4),
        timeout: Duration::from_secs(5),
        session_keep_alive: Duration::from_secs(60),
    }
}

fn described(status: StatusString, rows: bool) -> DescribeStatementOutput {
    DescribeStatementOutput::builder()
        .id("stmt-1")
        .status(status)
        .has_result_set(rows)
        .build()
        .unwrap()
}

#[test]
fn data_api_polls_until_finished_and_reads_every_page_in_one_session() {
    let execute = mock!(aws_sdk_redshiftdata::Client::execute_statement)
        .sequence()
        .output(|| {
            ExecuteStatementOutput::builder()
                .id("stmt-1")
                .session_id("session-1")
                .build()
        })
        .output(|| ExecuteStatementOutput::builder().id("stmt-1").build())
        .repeatedly()
        .build();
    let later_in_session = mock!(aws_sdk_redshiftdata::Client::execute_statement)
        .match_requests(|r| r.session_id() == Some("session-1") && r.workgroup_name().is_none())
        .then_output(|| ExecuteStatementOutput::builder().id("stmt-1").build());
    let describe = mock!(aws_sdk_redshiftdata::Client::describe_statement)
        .sequence()
        .output(|| described(StatusString::Submitted, true))
        .output(|| described(StatusString::Started, true))
        .output(|| described(StatusString::Finished, true))
        .repeatedly()
        .build();
    let page = |n: i64, token: Option<&str>| {
        let mut page = GetStatementResultOutput::builder()
            .column_metadata(ColumnMetadata::builder().name("level").build())
            .column_metadata(ColumnMetadata::builder().name("users").build())
            .records(vec![
                Field::StringValue(format!("level{n}")),
                Field::LongValue(n),
            ])
            .records(vec![Field::IsNull(true), Field::DoubleValue(0.5)]);
        if let Some(token) = token {
            page = page.next_token(token);
        }
        page.build().unwrap()
    };
    let pages = mock!(aws_sdk_redshiftdata::Client::get_statement_result)
        .sequence()
        .output(move || page(1, Some("next")))
        .output(move || page(2, None))
        .build();
    let rules = [later_in_session, execute, describe, pages];
    let mut warehouse = data_api(&rules);
    assert!(warehouse
        .describe()
        .contains("workgroup sparkify-workgroup"));
    let result = warehouse
        .query("SELECT level, COUNT(*) AS users FROM users GROUP BY level")
        .unwrap();
    assert_eq!(result.columns, ["level", "users"]);
    assert_eq!(result.rows.len(), 4, "both pages read");
    assert_eq!(result.rows[2][1], sparkify::warehouse::Cell::Int(2));
    assert_eq!(result.rows[1][0], sparkify::warehouse::Cell::Null);
    assert!(rules[2].num_calls() >= 3, "polled until FINISHED");
    warehouse.execute("COMMIT").unwrap();
    assert_eq!(
        rules[0].num_calls(),
        1,
        "the second statement reused the session"
    );
}

#[test]
fn a_failed_data_api_statement_names_its_sql_and_the_reason() {
    let rules = [
        mock!(aws_sdk_redshiftdata::Client::execute_statement).then_output(|| {
            ExecuteStatementOutput::builder()
                .id("stmt-1")
                .session_id("session-1")
                .build()
        }),
        mock!(aws_sdk_redshiftdata::Client::describe_statement).then_output(|| {
            DescribeStatementOutput::builder()
                .id("stmt-1")
                .status(StatusString::Failed)
                .error("ERROR: relation \"songplays\" does not exist")
                .build()
                .unwrap()
        }),
    ];
    let mut warehouse = data_api(&rules);
    let err = format!(
        "{:#}",
        warehouse.execute("DELETE FROM songplays").unwrap_err()
    );
    assert!(err.contains("DELETE FROM songplays"), "{err}");
    assert!(
        err.contains("relation \"songplays\" does not exist"),
        "{err}"
    );
}

/// Without a session id each later statement would run in a session of its own, outside the
/// transaction BEGIN opened: the run stops after the first statement.
#[test]
fn a_data_api_answer_without_a_session_stops_the_run_after_the_first_statement() {
    let rules = [
        mock!(aws_sdk_redshiftdata::Client::execute_statement)
            .then_output(|| ExecuteStatementOutput::builder().id("stmt-1").build()),
        mock!(aws_sdk_redshiftdata::Client::describe_statement)
            .then_output(|| described(StatusString::Finished, false)),
    ];
    let mut warehouse = data_api(&rules);
    let err = format!("{:#}", warehouse.execute("BEGIN").unwrap_err());
    assert!(err.contains("no SessionId"), "{err}");
    assert!(warehouse.execute("DELETE FROM songplays").is_err());
    assert_eq!(
        rules[0].num_calls(),
        1,
        "nothing sent after the first statement"
    );
}

/// The session is asked to be kept as long as `session_keep_alive`, and between statements (S3
/// work) a statement that changes nothing refreshes it once a third of that has passed, in the
/// same session; not more often.
#[test]
fn the_data_api_session_is_kept_alive_through_s3_work() {
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Option<i32>)>::new()));
    let log = sent.clone();
    let rules = [
        mock!(aws_sdk_redshiftdata::Client::execute_statement).then_compute_output(move |input| {
            log.lock().unwrap().push((
                input.sql().unwrap_or_default().to_string(),
                input.session_keep_alive_seconds(),
            ));
            ExecuteStatementOutput::builder()
                .id("stmt-1")
                .session_id("session-1")
                .build()
        }),
        mock!(aws_sdk_redshiftdata::Client::describe_statement)
            .then_output(|| described(StatusString::Finished, false)),
    ];
    let client = mock_client!(aws_sdk_redshiftdata, &rules);
    let mut warehouse = RedshiftDataWarehouse::with_client(
        runtime(),
        client,
        Target::Workgroup("sparkify-workgroup".into()),
        "dwh".into(),
        Polling {
            session_keep_alive: Duration::from_secs(3),
            ..fast_polling()
        },
    );
    use sparkify::warehouse::Warehouse;
    warehouse.keep_alive().unwrap();
    assert!(
        sent.lock().unwrap().is_empty(),
        "no session yet: nothing to keep"
    );
    warehouse.execute("BEGIN").unwrap();
    warehouse.keep_alive().unwrap();
    assert_eq!(sent.lock().unwrap().len(), 1, "the session was just used");
    std::thread::sleep(Duration::from_millis(1100));
    warehouse.keep_alive().unwrap();
    let sent = sent.lock().unwrap().clone();
    assert_eq!(
        sent,
        [
            ("BEGIN".to_string(), Some(3)),
            ("SELECT 1".to_string(), None)
        ]
    );
}

/// A statement past the longest wait is cancelled, not left running (and billing, and holding
/// its locks) on the server.
#[test]
fn a_data_api_statement_that_outlasts_the_wait_is_cancelled() {
    let rules = [
        mock!(aws_sdk_redshiftdata::Client::execute_statement).then_output(|| {
            ExecuteStatementOutput::builder()
                .id("stmt-1")
                .session_id("session-1")
                .build()
        }),
        mock!(aws_sdk_redshiftdata::Client::describe_statement)
            .then_output(|| described(StatusString::Started, false)),
        mock!(aws_sdk_redshiftdata::Client::cancel_statement)
            .match_requests(|r| r.id() == Some("stmt-1"))
            .then_output(|| {
                aws_sdk_redshiftdata::operation::cancel_statement::CancelStatementOutput::builder()
                    .status(true)
                    .build()
            }),
    ];
    let client = mock_client!(aws_sdk_redshiftdata, &rules);
    let mut warehouse = RedshiftDataWarehouse::with_client(
        runtime(),
        client,
        Target::Workgroup("sparkify-workgroup".into()),
        "dwh".into(),
        Polling {
            timeout: Duration::from_millis(50),
            ..fast_polling()
        },
    );
    let err = format!("{:#}", warehouse.execute("COPY staging_songs").unwrap_err());
    assert!(err.contains("it was cancelled"), "{err}");
    assert_eq!(rules[2].num_calls(), 1);
}

/// After `iac_create --no-ingress` the endpoint cannot be reached: the config is pointed at the
/// Data API (unless it names an engine itself), and `iac_delete` points it back at auto.
#[test]
fn no_ingress_writes_the_data_api_engine_and_delete_undoes_it() {
    let created = iac::Created {
        host: HOST.into(),
        port: 5439,
        role_arn: ROLE_ARN.into(),
        changed: true,
    };
    let keys = |settings: &[(&str, &str, String)]| -> Vec<String> {
        settings
            .iter()
            .map(|(s, k, v)| format!("[{s}] {k} = {v}"))
            .collect()
    };
    let written = keys(&iac::config_after_create(&config(), &created, true));
    assert!(
        written.contains(&"[WAREHOUSE] ENGINE = redshift-data".to_string()),
        "{written:?}"
    );
    assert!(written.contains(&format!("[CLUSTER] HOST = {HOST}")));
    let with_port = keys(&iac::config_after_create(&config(), &created, false));
    assert!(
        !with_port.iter().any(|s| s.contains("ENGINE")),
        "{with_port:?}"
    );
    let mut chosen = config();
    chosen.warehouse.engine = sparkify::config::EngineChoice::Redshift;
    let kept = keys(&iac::config_after_create(&chosen, &created, true));
    assert!(!kept.iter().any(|s| s.contains("ENGINE")), "{kept:?}");
    let mut data_api = config();
    data_api.warehouse.engine = sparkify::config::EngineChoice::RedshiftData;
    assert_eq!(
        keys(&iac::config_after_delete(&data_api)),
        ["[CLUSTER] HOST = ", "[WAREHOUSE] ENGINE = auto"]
    );
    assert_eq!(
        keys(&iac::config_after_delete(&config())),
        ["[CLUSTER] HOST = "]
    );
}

#[test]
fn keys_from_the_config_never_show() {
    let config = config();
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("sentinel-secret-key") && !shown.contains(PASSWORD),
        "{shown}"
    );
    let plan = DeletePlan::new(&config, true, None, timing());
    assert!(!format!("{plan:?}").contains(PASSWORD));
}

#[test]
fn iac_create_dry_run_prints_the_plan_and_refuses_the_whole_internet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dwh.cfg");
    let text = format!(
        "[CLUSTER]\nHOST=\nDB_NAME=dwh\nDB_USER=dwhuser\nDB_PASSWORD={PASSWORD}\n\
         [S3]\nLOG_DATA=s3://udacity-dend/log_data\nSONG_DATA=s3://udacity-dend/song_data\n\
         LOG_JSONPATH=s3://udacity-dend/log_json_path.json\n[DWH]\nDWH_REGION=us-west-2\n"
    );
    std::fs::write(&path, &text).unwrap();
    let run = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("iac_create")
            .unwrap()
            .arg("--config")
            .arg(&path)
            .args(args)
            .env_remove("AWS_REGION")
            .env_remove("AWS_PROFILE")
            // Credentials a real run could use (never sent: nothing is called).
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "sentinel-secret-key")
            .assert()
    };
    let out = run(&["--dry-run", "--cidr", "203.0.113.7/32"]).success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("in region us-west-2"), "{stdout}");
    assert!(stdout.contains("namespace sparkify-namespace"), "{stdout}");
    assert!(stdout.contains("from 203.0.113.7/32"), "{stdout}");
    assert!(stdout.contains("Nothing was changed"), "{stdout}");
    assert!(!stdout.contains(PASSWORD), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "the dry run wrote the config"
    );
    // A network flag that cannot be used is a usage error: exit 2.
    let out = run(&["--dry-run", "--cidr", "0.0.0.0/0"]).code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("refusing"), "{stderr}");
    let out = run(&["--dry-run", "--cidr", "notacidr"]).code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("write it as ADDRESS/32"), "{stderr}");
}

/// How the scripted Redshift behaves.
#[derive(Debug, Clone, Copy)]
struct Script {
    /// The COPY into staging_events fails (after skipping what it could).
    copy_fails: bool,
    /// Records the events COPY skips; the songs COPY always skips one.
    events_skipped: i64,
    /// sys_load_error_detail holds one row fewer than sys_load_history's error_count says.
    loses_an_error_row: bool,
    /// A Serverless workgroup, which refuses queries of STL tables; else a provisioned cluster.
    serverless: bool,
    /// The source prefixes also hold a README, a `_SUCCESS` marker and the JSONPaths file.
    extra_objects: bool,
    /// `[S3] MANIFEST_PREFIX` is set.
    manifest_prefix: bool,
    /// `[S3] COALESCE` is on, and the song prefix also holds a pretty-printed song, a
    /// malformed one and one over 1 MiB.
    coalesce: bool,
    /// Where sys_load_error_detail says the song the songs COPY skipped is: (file, line).
    song_error_at: Option<(&'static str, i64)>,
    /// How many times sys_load_history shows a COPY that returned as still `running` before
    /// `completed` (the view holds running and finished COPYs alike).
    history_lags: usize,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            copy_fails: false,
            events_skipped: 2,
            loses_an_error_row: false,
            serverless: true,
            extra_objects: false,
            manifest_prefix: false,
            coalesce: false,
            song_error_at: None,
            history_lags: 0,
        }
    }
}

/// A scripted Redshift behind the Data API, following what the Redshift guide documents: every
/// statement is logged; each COPY gets a query id of its own and is recorded in
/// `sys_load_history` for this session (also when it fails), its skipped records in
/// `sys_load_error_detail` under that id; STL tables are refused on Serverless; the Data API
/// refuses SQL over 100 KB. Statement ids are the SQL itself, so each later call knows which
/// statement it is about.
struct FakeRedshift {
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    rules: Vec<Rule>,
    script: Script,
    /// The bucket `udacity-dend` that the run lists (and writes manifests to), on loopback.
    s3: s3_server::Server,
    bucket: tempfile::TempDir,
}

/// The mapping etl reads (and fingerprints for the ledger) before Redshift's COPY uses it.
const JSONPATHS: &str = include_str!("../data/log_json_path.json");
const SONGS_STAGED: i64 = 10;
const EVENTS_STAGED: i64 = 100;
/// The query id of the first COPY of the session; each later COPY gets the next.
const FIRST_COPY_ID: i64 = 5_000;
const SQL_LIMIT_BYTES: usize = 100 * 1024;

impl FakeRedshift {
    fn new(script: Script) -> FakeRedshift {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let executed = log.clone();
        let execute = mock!(aws_sdk_redshiftdata::Client::execute_statement)
            .match_requests(|input| input.sql().unwrap_or_default().len() <= SQL_LIMIT_BYTES)
            .then_compute_output(move |input| {
                let sql = input.sql().unwrap_or_default().to_string();
                executed.lock().unwrap().push(sql.clone());
                ExecuteStatementOutput::builder()
                    .id(sql)
                    .session_id("session-1")
                    .build()
            });
        let too_large = mock!(aws_sdk_redshiftdata::Client::execute_statement).then_error(|| {
            ExecuteStatementError::ValidationException(
                aws_sdk_redshiftdata::types::error::ValidationException::builder()
                    .message("Cannot process query string larger than 100kB")
                    .build(),
            )
        });
        let describe = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_compute_output(
            move |input| {
                let sql = input.id().unwrap_or_default();
                let error = if script.copy_fails && sql.starts_with("COPY staging_events") {
                    Some(
                        "ERROR: Load into table 'staging_events' failed. Check \
                         'sys_load_error_detail' system table for details.",
                    )
                } else if script.serverless && sql.contains("stl_") {
                    Some("ERROR: You cannot query STL tables on Redshift Serverless")
                } else {
                    None
                };
                let mut out = DescribeStatementOutput::builder()
                    .id(sql)
                    // As Redshift: a query, with or without a WITH clause, returns rows.
                    .has_result_set(sql.starts_with("SELECT") || sql.starts_with("WITH"));
                out = match error {
                    Some(error) => out.status(StatusString::Failed).error(error),
                    None => out.status(StatusString::Finished),
                };
                out.build().unwrap()
            },
        );
        let answered = log.clone();
        let results = mock!(aws_sdk_redshiftdata::Client::get_statement_result)
            .then_compute_output(move |input| {
                let sql = input.id().unwrap_or_default();
                let log = answered.lock().unwrap();
                let rows = script.answer(sql, &log);
                GetStatementResultOutput::builder()
                    .column_metadata(ColumnMetadata::builder().name("c").build())
                    .set_records(Some(rows))
                    .build()
                    .unwrap()
            });
        let bucket = tempfile::tempdir().unwrap();
        let root = bucket.path().join("udacity-dend");
        let write = |key: &str, text: &str| {
            let path = root.join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("song_data/A/A/A/TRAAAAW128F429D538.json", "{}");
        write("song_data/A/A/B/TRAABJL12903CDCF1A.json", "{}");
        write("song_data_old/A/TRAOLD.json", "{}");
        write("log_data/2018/11/2018-11-01-events.json", "{}");
        write("log_json_path.json", JSONPATHS);
        if script.coalesce {
            write("song_data/A/A/C/TRAACPRETTY.json", PRETTY_SONG);
            write(
                "song_data/A/A/D/TRAADBROKEN.json",
                "{\"song_id\": \"SOBROKEN\", ",
            );
            write("song_data/A/A/E/TRAAELARGE.json", &large_song());
            write("song_data/B/TRB.json", ONE_LINE_SONG);
        }
        if script.extra_objects {
            write("song_data/README.md", "about the songs");
            write("song_data/_SUCCESS", "");
            write("log_data/log_json_path.json", JSONPATHS);
        }
        std::fs::create_dir_all(bucket.path().join("manifests")).unwrap();
        // Only requests signed with the config's [AWS] keys are served: the run lists and
        // writes manifests as the identity its other AWS calls use.
        let s3 = s3_server::Server::start(bucket.path(), true);
        FakeRedshift {
            log,
            rules: vec![execute, too_large, describe, results],
            script,
            s3,
            bucket,
        }
    }

    /// The config of the run: a Serverless workgroup, sources in the loopback bucket.
    fn config(&self) -> Config {
        let mut config = redshift_config();
        config.s3.endpoint = Some(self.s3.endpoint.clone());
        config.aws = sparkify::config::AwsKeys {
            key: Secret::new(s3_server::ACCESS_KEY),
            secret: Secret::new(s3_server::SECRET_KEY),
        };
        if self.script.extra_objects {
            config.s3.log_jsonpath = "s3://udacity-dend/log_data/log_json_path.json".into();
        }
        if self.script.manifest_prefix {
            config.s3.manifest_prefix = "s3://manifests/sparkify".into();
        }
        config.s3.coalesce = self.script.coalesce;
        config
    }

    fn warehouse(&self) -> RedshiftDataWarehouse {
        let client = mock_client!(aws_sdk_redshiftdata, &self.rules);
        let target = if self.script.serverless {
            Target::Workgroup("sparkify-workgroup".into())
        } else {
            Target::Cluster {
                identifier: "sparkify-cluster".into(),
                db_user: "dwhuser".into(),
            }
        };
        RedshiftDataWarehouse::with_client(runtime(), client, target, "dwh".into(), fast_polling())
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The statements of the last run (from its BEGIN on).
    fn last_run(&self) -> Vec<String> {
        let log = self.log();
        let begin = log.iter().rposition(|s| s == "BEGIN").unwrap_or(0);
        log[begin..].to_vec()
    }

    /// Writes (or rewrites) an object of the loopback bucket `udacity-dend`.
    fn put(&self, key: &str, text: &str) {
        let path = self.bucket.path().join("udacity-dend").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn etl(&self, max_errors: u64) -> anyhow::Result<sparkify::etl::EtlReport> {
        sparkify::etl::run(
            &self.config(),
            &mut self.warehouse(),
            &sparkify::etl::EtlOptions {
                max_errors,
                ..Default::default()
            },
            &sparkify::progress::Progress::hidden(),
        )
    }
}

impl Script {
    fn skipped(&self, events: bool) -> i64 {
        if events {
            self.events_skipped
        } else {
            1
        }
    }

    /// The rows Redshift returns for the query `sql`, given the statements run so far.
    fn answer(&self, sql: &str, log: &[String]) -> Vec<Vec<Field>> {
        let copies: Vec<&String> = log.iter().filter(|s| s.starts_with("COPY ")).collect();
        let bad_file = |events: bool| {
            if events {
                "s3://udacity-dend/log_data/2018/11/bad.json"
            } else {
                "s3://udacity-dend/song_data/A/bad.json"
            }
        };
        if sql.contains("information_schema.tables") {
            sparkify::schema::ALL_TABLES
                .iter()
                .map(|t| vec![Field::StringValue(t.name.into())])
                .collect()
        } else if sql.contains("FROM pg_catalog.pg_class c") {
            // Every table there, made by create_tables: each carries the toolkit's mark.
            sparkify::schema::ALL_TABLES
                .iter()
                .map(|t| {
                    vec![
                        Field::StringValue(t.name.into()),
                        Field::StringValue(sparkify::sql::TABLE_MARK.into()),
                    ]
                })
                .collect()
        } else if sql == sparkify::sql::ledger_entries() {
            ledger(log)
        } else if sql.contains("FROM sys_load_history") {
            // The newest COPY of this session into the table the query names.
            copies
                .iter()
                .enumerate()
                .rev()
                .find(|(_, copy)| {
                    let table = copy.split_whitespace().nth(1).unwrap_or_default();
                    sql.contains(&format!("'{table}'"))
                })
                .map(|(n, copy)| {
                    let events = copy_of_events(copy);
                    let failed = events && self.copy_fails;
                    let loaded = match (failed, events) {
                        (true, _) => 0,
                        (false, true) => EVENTS_STAGED,
                        (false, false) => SONGS_STAGED,
                    };
                    // Asked how many times since the last COPY (this ask included).
                    let last_copy = log.iter().rposition(|s| s.starts_with("COPY "));
                    let asks = log[last_copy.map_or(0, |i| i + 1)..]
                        .iter()
                        .filter(|s| s.contains("FROM sys_load_history"))
                        .count();
                    let status = match (failed, asks <= self.history_lags) {
                        (true, _) => "aborted",
                        (false, true) => "running",
                        (false, false) => "completed",
                    };
                    // A running COPY's counts are not final yet.
                    let (loaded, skipped) = if status == "running" {
                        (0, 0)
                    } else {
                        (loaded, self.skipped(events))
                    };
                    vec![
                        Field::LongValue(FIRST_COPY_ID + n as i64),
                        Field::LongValue(loaded),
                        Field::LongValue(skipped),
                        Field::StringValue(status.into()),
                    ]
                })
                .into_iter()
                .collect()
        } else if sql.contains("FROM sys_load_error_detail") {
            let id: i64 = sql
                .split("query_id = ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|id| id.parse().ok())
                .expect("errors are asked for by query id");
            let events = copy_of_events(copies[(id - FIRST_COPY_ID) as usize]);
            let mut count = self.skipped(events);
            if self.loses_an_error_row && events {
                count -= 1;
            }
            (1..=count)
                .map(|line| {
                    let (file, line) = match self.song_error_at {
                        Some(at) if !events => at,
                        _ => (bad_file(events), line),
                    };
                    vec![
                        Field::StringValue(file.into()),
                        Field::LongValue(line),
                        Field::StringValue(if events { "ts" } else { "year" }.into()),
                        Field::StringValue("Invalid digit, Value 'a'".into()),
                    ]
                })
                .collect()
        } else if sql.contains("FROM stl_load_errors") {
            let events = copies.last().is_some_and(|c| copy_of_events(c));
            (1..=self.skipped(events))
                .map(|line| {
                    vec![
                        Field::StringValue(bad_file(events).into()),
                        Field::LongValue(line),
                        Field::StringValue(format!("{{\"ts\": \"a{line}\"}}")),
                    ]
                })
                .collect()
        } else if sql.starts_with("SELECT COUNT(*) FROM ") && sql.contains(" WHERE (OCTET_LENGTH(")
        {
            // What the local loader would reject (event times out of range, texts cut to
            // their width): the scripted COPY stages none.
            vec![vec![Field::LongValue(0)]]
        } else if let Some(table) = sql
            .strip_prefix("SELECT COUNT(*) FROM ")
            .filter(|rest| !rest.starts_with('('))
        {
            // What this run's COPY into an incoming table loaded, if it ran one.
            let run = &log[log.iter().rposition(|s| s == "BEGIN").unwrap_or(0)..];
            let copied = |table: &str| run.iter().any(|s| s.starts_with(&format!("COPY {table} ")));
            let count = match table {
                "staging_songs" => SONGS_STAGED,
                "staging_events" => EVENTS_STAGED,
                "incoming_songs" if copied(table) => SONGS_STAGED,
                "incoming_events" if copied(table) => EVENTS_STAGED,
                "incoming_songs" | "incoming_events" => 0,
                "load_errors" => inserted_rows(log, "load_errors").len() as i64,
                _ => 7,
            };
            vec![vec![Field::LongValue(count)]]
        } else if let Some(width) = sparkify::sql::check_answer_width(sql) {
            // A check's answer, one failure count per check: 7 rows, none failing.
            let mut row = vec![Field::LongValue(7)];
            row.extend((1..width).map(|_| Field::LongValue(0)));
            vec![row]
        } else {
            // The other quality checks: 7 rows examined, none failing.
            vec![vec![Field::LongValue(7), Field::LongValue(0)]]
        }
    }
}

/// Whether a logged COPY loads events (into staging or, incrementally, into incoming_events).
fn copy_of_events(copy: &str) -> bool {
    copy.starts_with("COPY staging_events") || copy.starts_with("COPY incoming_events")
}

/// The rows `table` holds by the log: those the INSERTs after its last emptying added (each
/// INSERT ... VALUES statement holds one row per line after its first).
fn inserted_rows(log: &[String], table: &str) -> Vec<String> {
    let emptied = log
        .iter()
        .rposition(|s| *s == format!("DELETE FROM {table}"))
        .map_or(0, |at| at + 1);
    log[emptied..]
        .iter()
        .filter(|s| s.starts_with(&format!("INSERT INTO {table} (")))
        .flat_map(|s| s.lines().skip(1).map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// The ledger's entries (every column), as the log's INSERTs into loaded_files left it.
fn ledger(log: &[String]) -> Vec<Vec<Field>> {
    inserted_rows(log, "loaded_files")
        .iter()
        .map(|row| {
            let values: Vec<&str> = row
                .trim_end_matches(',')
                .trim_start_matches('(')
                .trim_end_matches(')')
                .split(", ")
                .collect();
            let text = |i: usize| Field::StringValue(values[i].trim_matches('\'').into());
            let number = |i: usize| match values[i] {
                "NULL" => Field::IsNull(true),
                n => Field::LongValue(n.parse().unwrap()),
            };
            vec![
                text(0),
                text(1),
                number(2),
                text(3),
                number(4),
                number(5),
                number(6),
                text(7),
            ]
        })
        .collect()
}

/// The config of a Serverless workgroup.
fn redshift_config() -> Config {
    let mut config = config();
    config.cluster.host = HOST.into();
    config.iam_role_arn = ROLE_ARN.into();
    config.s3.region = "us-west-2".into();
    config.dwh.workgroup = "sparkify-workgroup".into();
    config
}

/// The rows of every `INSERT INTO load_errors` in the log.
fn inserted_rejects(log: &[String]) -> Vec<String> {
    log.iter()
        .filter(|s| s.starts_with("INSERT INTO load_errors"))
        .flat_map(|s| s.lines().skip(1).map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// With `[S3] REGION`, COPY needs the manifests in that region: a MANIFEST_PREFIX bucket
/// elsewhere is refused before any part or manifest is written there.
#[test]
fn a_manifest_bucket_in_another_region_is_refused_before_anything_is_written() {
    let fake = FakeRedshift::new(Script {
        manifest_prefix: true,
        coalesce: true,
        ..Script::default()
    });
    std::fs::create_dir_all(fake.bucket.path().join("manifests-eu-west-1")).unwrap();
    let mut config = fake.config();
    config.s3.manifest_prefix = "s3://manifests-eu-west-1/sparkify".into();
    let err = sparkify::etl::run(
        &config,
        &mut fake.warehouse(),
        &sparkify::etl::EtlOptions {
            max_errors: 5,
            ..Default::default()
        },
        &sparkify::progress::Progress::hidden(),
    )
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("bucket manifests-eu-west-1 is in eu-west-1")
            && err.contains("REGION 'us-west-2'"),
        "{err}"
    );
    let written = std::fs::read_dir(fake.bucket.path().join("manifests-eu-west-1"))
        .unwrap()
        .count();
    assert_eq!(written, 0, "nothing written in the other region");
    assert!(!fake.log().iter().any(|s| s.starts_with("COPY ")));
}

/// sys_load_history holds running and finished COPYs alike: a COPY that returned but still
/// reads `running` is asked about again until `completed`, and the load goes on.
#[test]
fn a_copy_still_running_in_sys_load_history_is_waited_for() {
    let fake = FakeRedshift::new(Script {
        history_lags: 2,
        ..Script::default()
    });
    let report = fake.etl(5).unwrap();
    assert_eq!(report.sources[0].staged, SONGS_STAGED as u64);
    assert_eq!(
        report.rejected(),
        3,
        "the final counts, not the running ones"
    );
    let asked = fake
        .log()
        .iter()
        .filter(|s| s.contains("FROM sys_load_history"))
        .count();
    assert_eq!(asked, 2 * 3, "each COPY asked three times");
}

#[test]
fn etl_on_redshift_copies_from_s3_and_keeps_what_it_skipped() {
    let fake = FakeRedshift::new(Script::default());
    let report = fake.etl(5).unwrap();
    assert_eq!(report.rejected(), 3);
    assert_eq!(report.sources[0].staged, SONGS_STAGED as u64);
    assert_eq!(report.sources[1].records, EVENTS_STAGED as u64 + 2);
    let summary = sparkify::report::etl_summary(&report, true);
    assert!(summary.contains("(by Redshift)"), "{summary}");
    let log = fake.log();
    let position = |prefix: &str| {
        log.iter()
            .position(|s| s.starts_with(prefix))
            .unwrap_or_else(|| panic!("no statement starting {prefix:?} in {log:#?}"))
    };
    assert_eq!(log[position("BEGIN")], "BEGIN");
    let copy_events = &log[position("COPY staging_events")];
    assert!(
        copy_events.contains(&format!("IAM_ROLE '{ROLE_ARN}'")),
        "{copy_events}"
    );
    assert!(copy_events.contains("FORMAT AS JSON 's3://udacity-dend/log_json_path.json'"));
    // MAX_ERRORS 5 tolerates five rejects: Redshift fails when errors reach MAXERROR.
    assert!(
        copy_events.contains("REGION 'us-west-2'") && copy_events.ends_with("MAXERROR 6"),
        "{copy_events}"
    );
    assert!(log[position("COPY staging_songs")].contains("JSON 'auto ignorecase'"));
    // The errors of each COPY are read by its own query id, found for this session.
    assert!(log.iter().any(
        |s| s.contains("FROM sys_load_history") && s.contains("session_id = pg_backend_pid()")
    ));
    for id in [FIRST_COPY_ID, FIRST_COPY_ID + 1] {
        assert!(log.iter().any(|s| s.contains(&format!("query_id = {id} "))));
    }
    let rejects = inserted_rejects(&log);
    assert_eq!(rejects.len(), 3, "{rejects:#?}");
    assert!(
        rejects.iter().any(|r| r.contains(
            "'s3://udacity-dend/log_data/2018/11/bad.json', 2, 'ts: Invalid digit, Value ''a'''"
        )),
        "{rejects:#?}"
    );
    assert!(
        rejects
            .iter()
            .any(|r| r.starts_with("('song_data', 's3://udacity-dend/song_data/A/bad.json', 1")),
        "{rejects:#?}"
    );
    assert!(position("INSERT INTO songplays") > position("COPY staging_events"));
    // Serverless: no STL table is ever queried.
    assert!(!log.iter().any(|s| s.contains("stl_")), "{log:#?}");
    assert_eq!(log.last().map(String::as_str), Some("COMMIT"));
    assert!(!log.iter().any(|s| s.contains(PASSWORD)));
}

#[test]
fn without_a_manifest_prefix_redshift_reloads_everything_and_keeps_no_ledger() {
    let fake = FakeRedshift::new(Script::default());
    let report = fake.etl(5).unwrap();
    match &report.mode {
        sparkify::ledger::LoadMode::FullRefresh(why) => {
            assert!(why.contains("needs [S3] MANIFEST_PREFIX"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let log = fake.log();
    assert!(log.iter().any(|s| s == "DELETE FROM loaded_files"));
    assert!(!log
        .iter()
        .any(|s| s.starts_with("INSERT INTO loaded_files")));
    // The second run reads everything again.
    fake.put("log_data/2018/11/2018-11-02-events.json", "{}");
    fake.etl(5).unwrap();
    assert!(fake
        .last_run()
        .iter()
        .any(|s| s.starts_with("COPY staging_events")));
}

#[test]
fn with_a_manifest_prefix_redshift_copies_only_new_files_and_merges_them_in_the_same_transaction() {
    let fake = FakeRedshift::new(Script {
        manifest_prefix: true,
        ..Script::default()
    });
    let first = fake.etl(5).unwrap();
    assert!(
        matches!(&first.mode, sparkify::ledger::LoadMode::FullRefresh(why) if why.contains("ledger is empty")),
        "{:?}",
        first.mode
    );
    // The first load COPYs exactly the files it enters in the ledger.
    assert_eq!(manifest_urls(&fake, "staging_songs").len(), 2);
    assert_eq!(
        manifest_urls(&fake, "staging_events"),
        ["s3://udacity-dend/log_data/2018/11/2018-11-01-events.json"]
    );
    let entries = inserted_rows(&fake.log(), "loaded_files");
    assert_eq!(
        entries.len(),
        4,
        "three files and the mapping: {entries:#?}"
    );
    // Redshift counts rows per COPY, not per file: records and staged are unknown.
    assert!(
        entries.iter().any(
            |e| e.starts_with("('log_data', '2018/11/2018-11-01-events.json', 2, ")
                && e.contains(", NULL, NULL, 0, '")
        ),
        "{entries:#?}"
    );
    assert!(entries.iter().any(|e| e.starts_with("('log_jsonpath', ")));

    // A new day: only its file is copied, into incoming_events, then merged.
    fake.put("log_data/2018/11/2018-11-02-events.json", "{}\n");
    let second = fake.etl(5).unwrap();
    assert_eq!(second.mode, sparkify::ledger::LoadMode::Incremental);
    let changes = second.changes.clone().unwrap();
    assert_eq!((changes.new, changes.changed, changes.unchanged), (1, 0, 3));
    assert_eq!(
        manifest_urls(&fake, "incoming_events"),
        ["s3://udacity-dend/log_data/2018/11/2018-11-02-events.json"]
    );
    let run = fake.last_run();
    let position = |prefix: &str| {
        run.iter()
            .position(|s| s.starts_with(prefix))
            .unwrap_or_else(|| panic!("no statement starting {prefix:?} in {run:#?}"))
    };
    let copy = &run[position("COPY incoming_events")];
    assert!(
        copy.contains("FROM 's3://manifests/sparkify/sparkify-incoming_events.manifest'")
            && copy.contains("\nMANIFEST\n"),
        "{copy}"
    );
    assert!(
        !run.iter().any(|s| s.starts_with("COPY staging_")
            || s.starts_with("COPY incoming_songs")
            || s == "DELETE FROM staging_events"
            || s == "DELETE FROM songplays"),
        "nothing but the new file is read, nothing loaded before is emptied: {run:#?}"
    );
    let order = [
        position("COPY incoming_events"),
        position("INSERT INTO staging_events SELECT * FROM incoming_events"),
        position("CREATE TEMP TABLE merge_from"),
        position("DELETE FROM songplays USING incoming_events"),
        position("UPDATE songplays SET songplay_id"),
        run.len() - 1,
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{order:?} in {run:#?}"
    );
    assert_eq!(run.last().map(String::as_str), Some("COMMIT"));
    assert_eq!(inserted_rows(&fake.log(), "loaded_files").len(), 5);

    // Nothing new: nothing is copied or changed.
    let third = fake.etl(5).unwrap();
    assert_eq!(third.mode, sparkify::ledger::LoadMode::NothingNew);
    assert!(!fake
        .last_run()
        .iter()
        .any(|s| s.starts_with("COPY") || s.starts_with("INSERT") || s.starts_with("DELETE")));

    // A file rewritten since it was loaded: everything is read again.
    fake.put("log_data/2018/11/2018-11-01-events.json", "{}\n{}\n");
    let fourth = fake.etl(5).unwrap();
    assert!(
        matches!(&fourth.mode, sparkify::ledger::LoadMode::FullRefresh(why)
            if why == "[log_data] 2018/11/2018-11-01-events.json changed since it was loaded"),
        "{:?}",
        fourth.mode
    );
    assert_eq!(manifest_urls(&fake, "staging_events").len(), 2);
    assert_eq!(inserted_rows(&fake.log(), "loaded_files").len(), 5);
}

#[test]
fn hundreds_of_rejects_go_into_load_errors_in_statements_the_data_api_takes() {
    let fake = FakeRedshift::new(Script {
        events_skipped: 600,
        ..Script::default()
    });
    let report = fake.etl(1_000).unwrap();
    assert_eq!(report.rejected(), 601);
    let log = fake.log();
    let inserts: Vec<&String> = log
        .iter()
        .filter(|s| s.starts_with("INSERT INTO load_errors"))
        .collect();
    assert!(inserts.len() > 1, "{} insert(s)", inserts.len());
    assert!(inserts
        .iter()
        .all(|s| s.len() <= sparkify::sql::REDSHIFT_STATEMENT_BYTES));
    assert_eq!(inserted_rejects(&log).len(), 601);
    assert_eq!(log.last().map(String::as_str), Some("COMMIT"));
}

#[test]
fn a_reject_redshift_counted_but_did_not_detail_fails_the_run() {
    let fake = FakeRedshift::new(Script {
        loses_an_error_row: true,
        ..Script::default()
    });
    let err = format!("{:#}", fake.etl(5).unwrap_err());
    assert!(
        err.contains("counted 2 errors in sys_load_history but sys_load_error_detail holds 1"),
        "{err}"
    );
    let log = fake.log();
    assert!(log.iter().any(|s| s == "ROLLBACK"), "{log:#?}");
    assert!(!log.iter().any(|s| s == "COMMIT"), "{log:#?}");
}

#[test]
fn a_provisioned_cluster_adds_the_raw_lines_of_what_it_skipped() {
    let fake = FakeRedshift::new(Script {
        serverless: false,
        ..Script::default()
    });
    fake.etl(5).unwrap();
    let rejects = inserted_rejects(&fake.log());
    assert!(
        rejects
            .iter()
            .any(|r| r
                .contains("bad.json', 2, 'ts: Invalid digit, Value ''a''', '{\"ts\": \"a2\"}')")),
        "{rejects:#?}"
    );
}

#[test]
fn a_failed_redshift_copy_shows_its_own_load_errors_and_commits_nothing() {
    let fake = FakeRedshift::new(Script {
        copy_fails: true,
        ..Script::default()
    });
    let err = format!("{:#}", fake.etl(0).unwrap_err());
    assert!(
        err.contains("[S3] LOG_DATA = s3://udacity-dend/log_data"),
        "{err}"
    );
    // The errors of the failed events COPY, not those of the songs COPY before it.
    assert!(
        err.contains("s3://udacity-dend/log_data/2018/11/bad.json:1: ts: Invalid digit"),
        "{err}"
    );
    assert!(!err.contains("song_data/A/bad.json"), "{err}");
    assert!(err.contains("nothing was committed"), "{err}");
    let log = fake.log();
    assert!(log.iter().any(|s| s == "ROLLBACK"), "{log:#?}");
    assert!(!log.iter().any(|s| s == "COMMIT"), "{log:#?}");
}

#[test]
fn copy_reads_exactly_the_json_data_objects_through_a_manifest() {
    let fake = FakeRedshift::new(Script {
        extra_objects: true,
        manifest_prefix: true,
        ..Script::default()
    });
    fake.etl(5).unwrap();
    let log = fake.log();
    let copy_songs = log
        .iter()
        .find(|s| s.starts_with("COPY staging_songs"))
        .unwrap();
    assert!(
        copy_songs.contains("FROM 's3://manifests/sparkify/sparkify-staging_songs.manifest'")
            && copy_songs.contains("\nMANIFEST\n"),
        "{copy_songs}"
    );
    let manifest = |table: &str| manifest_urls(&fake, table);
    // Not song_data_old/, not the README, not _SUCCESS: what the local engines read.
    assert_eq!(
        manifest("staging_songs"),
        [
            "s3://udacity-dend/song_data/A/A/A/TRAAAAW128F429D538.json",
            "s3://udacity-dend/song_data/A/A/B/TRAABJL12903CDCF1A.json"
        ]
    );
    // Not the JSONPaths file that lies under the log prefix.
    assert_eq!(
        manifest("staging_events"),
        ["s3://udacity-dend/log_data/2018/11/2018-11-01-events.json"]
    );
}

#[test]
fn a_prefix_of_json_objects_only_is_copied_by_prefix_and_other_objects_need_a_manifest_prefix() {
    // The prefix, ending in `/`, leaves out song_data_old/.
    let fake = FakeRedshift::new(Script::default());
    fake.etl(5).unwrap();
    let log = fake.log();
    let copy_songs = log
        .iter()
        .find(|s| s.starts_with("COPY staging_songs"))
        .unwrap();
    assert!(
        copy_songs.contains("FROM 's3://udacity-dend/song_data/'")
            && !copy_songs.contains("MANIFEST\n"),
        "{copy_songs}"
    );

    let fake = FakeRedshift::new(Script {
        extra_objects: true,
        ..Script::default()
    });
    let err = format!("{:#}", fake.etl(5).unwrap_err());
    assert!(
        err.contains("[S3] SONG_DATA = s3://udacity-dend/song_data/ also holds 2 objects"),
        "{err}"
    );
    assert!(
        err.contains("song_data/README.md") && err.contains("MANIFEST_PREFIX"),
        "{err}"
    );
    assert!(!fake.log().iter().any(|s| s.starts_with("COPY")));
}

#[test]
fn max_errors_beyond_what_redshift_can_skip_is_refused() {
    let fake = FakeRedshift::new(Script::default());
    let err = format!("{:#}", fake.etl(100_000).unwrap_err());
    assert!(err.contains("MAXERROR is at most 100000"), "{err}");
    assert!(err.contains("MAX_ERRORS may be at most 99999"), "{err}");
    assert!(!fake.log().iter().any(|s| s.starts_with("COPY")));
}

#[test]
fn etl_on_redshift_needs_the_role() {
    let fake = FakeRedshift::new(Script::default());
    let mut config = fake.config();
    config.iam_role_arn.clear();
    let err = sparkify::etl::run(
        &config,
        &mut fake.warehouse(),
        &sparkify::etl::EtlOptions::default(),
        &sparkify::progress::Progress::hidden(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("[IAM_ROLE] ARN is empty: Redshift's COPY needs a role"),
        "{err}"
    );
}

const PRETTY_SONG: &str =
    "{\n  \"song_id\": \"SOPRETTY\",\n  \"artist_id\": \"ARPRETTY\",\n  \"title\": \"Pretty\"\n}";
const ONE_LINE_SONG: &str =
    "{\"song_id\": \"SOONE\", \"artist_id\": \"ARONE\", \"title\": \"One\"}\n";

/// A song file over 1 MiB: COPY reads it as itself.
fn large_song() -> String {
    format!(
        "{{\"song_id\": \"SOLARGE\", \"artist_id\": \"ARLARGE\", \"title\": \"{}\"}}",
        "x".repeat(1 << 20)
    )
}

/// The URLs a manifest written under the loopback bucket lists.
fn manifest_urls(fake: &FakeRedshift, table: &str) -> Vec<String> {
    let path = fake
        .bucket
        .path()
        .join(format!("manifests/sparkify/sparkify-{table}.manifest"));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["mandatory"], true);
            e["url"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The object behind an `s3://` URL of the loopback bucket.
fn object(fake: &FakeRedshift, url: &str) -> Vec<u8> {
    std::fs::read(fake.bucket.path().join(url.strip_prefix("s3://").unwrap())).unwrap()
}

const PART_0: &str = "s3://manifests/sparkify/sparkify-staging_songs-part-00000.json";

#[test]
fn coalesced_parts_hold_every_record_of_the_small_files_and_rejects_lead_back_to_them() {
    // The pretty-printed song starts on line 3 of the part (after two one-line songs), so
    // the part's line 5 is its line 3.
    let fake = FakeRedshift::new(Script {
        coalesce: true,
        manifest_prefix: true,
        song_error_at: Some((PART_0, 5)),
        ..Script::default()
    });
    let report = fake.etl(5).unwrap();
    let log = fake.log();
    let copy_songs = log
        .iter()
        .find(|s| s.starts_with("COPY staging_songs"))
        .unwrap();
    assert!(
        copy_songs.contains("FROM 's3://manifests/sparkify/sparkify-staging_songs.manifest'")
            && copy_songs.contains("\nMANIFEST\n"),
        "{copy_songs}"
    );
    // Four small songs in one part; the malformed and the large song read as themselves.
    let songs = manifest_urls(&fake, "staging_songs");
    assert_eq!(
        songs,
        [
            PART_0,
            "s3://udacity-dend/song_data/A/A/E/TRAAELARGE.json",
            "s3://udacity-dend/song_data/A/A/D/TRAADBROKEN.json",
        ]
    );
    // The part holds the same records as the files, as a JSON reader (ours) sees them.
    let small = [
        "song_data/A/A/A/TRAAAAW128F429D538.json",
        "song_data/A/A/B/TRAABJL12903CDCF1A.json",
        "song_data/A/A/C/TRAACPRETTY.json",
        "song_data/B/TRB.json",
    ];
    let rows_of = |bytes: &[u8]| sparkify::parse::parse_song_file("f", bytes).rows;
    let from_files: Vec<_> = small
        .iter()
        .flat_map(|key| rows_of(&object(&fake, &format!("s3://udacity-dend/{key}"))))
        .collect();
    assert_eq!(
        from_files.len(),
        2,
        "the two real songs (the `{{}}` files have no song_id)"
    );
    assert_eq!(rows_of(&object(&fake, PART_0)), from_files);
    // Each file starts on a line of its own: the first lines of the four files.
    let part = String::from_utf8(object(&fake, PART_0)).unwrap();
    let lines: Vec<&str> = part.lines().collect();
    assert_eq!(lines.len(), 8, "{part}");
    assert_eq!((lines[0], lines[1], lines[2]), ("{}", "{}", "{"));
    assert!(lines[7].contains("SOONE"), "{part}");
    // The skipped record is reported where it came from, not where COPY read it.
    let rejects = inserted_rejects(&log);
    let song_reject = rejects
        .iter()
        .find(|r| r.contains("song_data"))
        .unwrap_or_else(|| panic!("{rejects:?}"));
    assert!(
        song_reject.contains("'s3://udacity-dend/song_data/A/A/C/TRAACPRETTY.json', 3,"),
        "{song_reject}"
    );
    // The summary counts the source files, not the parts.
    let songs_stats = report
        .sources
        .iter()
        .find(|s| s.source == "song_data")
        .unwrap();
    assert_eq!(songs_stats.files, 6);
    // The log prefix holds one small file: one part of it.
    assert_eq!(
        manifest_urls(&fake, "staging_events"),
        ["s3://manifests/sparkify/sparkify-staging_events-part-00000.json"]
    );
}

#[test]
fn coalescing_needs_a_manifest_prefix_outside_the_sources() {
    let fake = FakeRedshift::new(Script {
        coalesce: true,
        ..Script::default()
    });
    let err = format!("{:#}", fake.etl(5).unwrap_err());
    assert!(
        err.contains("--coalesce (or [S3] COALESCE)") && err.contains("MANIFEST_PREFIX"),
        "{err}"
    );
    let mut config = fake.config();
    config.s3.manifest_prefix = "s3://udacity-dend/song_data/coalesced/".into();
    let err = sparkify::etl::run(
        &config,
        &mut fake.warehouse(),
        &sparkify::etl::EtlOptions::default(),
        &sparkify::progress::Progress::hidden(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("lies under the source prefix s3://udacity-dend/song_data/"),
        "{err}"
    );
    assert!(!fake.log().iter().any(|s| s.starts_with("COPY")));
}

#[test]
fn redshift_data_without_credentials_says_so_before_any_statement() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dwh.cfg");
    std::fs::write(
        &path,
        "[CLUSTER]\nHOST=\nDB_NAME=dwh\nDB_USER=dwhuser\n\
         [IAM_ROLE]\nARN=arn:aws:iam::123456789012:role/sparkify\n\
         [S3]\nLOG_DATA=s3://udacity-dend/log_data\nSONG_DATA=s3://udacity-dend/song_data\n\
         LOG_JSONPATH=s3://udacity-dend/log_json_path.json\nREGION=us-west-2\n\
         [DWH]\nDWH_REGION=us-west-2\nDWH_WORKGROUP_NAME=sparkify-workgroup\n",
    )
    .unwrap();
    let (code, stdout, stderr) = iac_offline("etl", &path, &["--engine", "redshift-data"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "the redshift-data engine signs its requests with AWS credentials: no AWS \
             credentials were found"
        ),
        "{stderr}"
    );
    // No statement is named: none was sent.
    assert!(!stderr.contains("failed on"), "{stderr}");
}
