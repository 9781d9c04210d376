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
use aws_sdk_redshiftdata::operation::execute_statement::ExecuteStatementOutput;
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
use aws_sdk_redshiftserverless::types::error::{
    ConflictException, ResourceNotFoundException, ValidationException,
};
use aws_sdk_redshiftserverless::types::{
    Endpoint, Namespace, NamespaceStatus, Workgroup, WorkgroupStatus,
};
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use sparkify::config::Config;
use sparkify::iac::{self, Change, Clients, Collect, CreatePlan, DeletePlan, Timing};
use sparkify::warehouse::{Polling, RedshiftDataWarehouse, Target, Warehouse};

/// A client of `$service` whose requests are answered by `$rules` (any matching rule), with
/// fixed test credentials and region and no SDK retries, so each test sees every call. (The
/// service crates' `test-util` feature would give the same through aws-smithy-mocks'
/// `mock_client!`, but it would make the test build's AWS crates differ from the binaries' and
/// compile them twice.)
macro_rules! mock_client {
    ($service:ident, $rules:expr) => {{
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in $rules.iter() {
            interceptor = interceptor.with_rule(rule);
        }
        $service::Client::from_conf(
            $service::Config::builder()
                .behavior_version($service::config::BehaviorVersion::latest())
                .region($service::config::Region::new("us-west-2"))
                .credentials_provider($service::config::Credentials::new(
                    "AKIDTEST",
                    "test-secret",
                    None,
                    None,
                    "tests",
                ))
                .retry_config($service::config::retry::RetryConfig::disabled())
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }};
}

const PASSWORD: &str = "Sentinel-Passw0rd-987";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read";
const HOST: &str = "sparkify-workgroup.123456789012.us-west-2.redshift-serverless.amazonaws.com";

fn config() -> Config {
    Config::parse(
        &format!(
            "[CLUSTER]\nHOST=\nDB_NAME=dwh\nDB_USER=dwhuser\nDB_PASSWORD={PASSWORD}\n\
             [S3]\nLOG_DATA=s3://udacity-dend/log_data\nSONG_DATA=s3://udacity-dend/song_data\n\
             LOG_JSONPATH=s3://udacity-dend/log_json_path.json\n\
             [AWS]\nKEY=AKIDEXAMPLE\nSECRET=sentinel-secret-key\n\
             [DWH]\nDWH_REGION=us-west-2\n"
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

fn role() -> Role {
    Role::builder()
        .path("/")
        .role_name("sparkify-redshift-s3-read")
        .role_id("AROAEXAMPLE")
        .arn(ROLE_ARN)
        .create_date(aws_sdk_iam::primitives::DateTime::from_secs(0))
        .build()
        .unwrap()
}

fn namespace(status: &str) -> Namespace {
    Namespace::builder()
        .namespace_name("sparkify-namespace")
        .iam_roles(format!(
            "IamRole(applyStatus=in-sync, iamRoleArn={ROLE_ARN})"
        ))
        .default_iam_role_arn(ROLE_ARN)
        .status(NamespaceStatus::from(status))
        .build()
}

fn workgroup(status: &str) -> Workgroup {
    Workgroup::builder()
        .workgroup_name("sparkify-workgroup")
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

struct Mocks {
    iam: Vec<Rule>,
    serverless: Vec<Rule>,
    ec2: Vec<Rule>,
}

impl Mocks {
    fn clients(&self) -> Clients {
        Clients {
            iam: mock_client!(aws_sdk_iam, &self.iam),
            serverless: mock_client!(aws_sdk_redshiftserverless, &self.serverless),
            ec2: mock_client!(aws_sdk_ec2, &self.ec2),
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
        })
        .then_output(|| CreateNamespaceOutput::builder().build());
    let create_workgroup = mock!(aws_sdk_redshiftserverless::Client::create_workgroup)
        .match_requests(|r| {
            r.base_capacity() == Some(8)
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
                })
        })
        .then_output(|| AuthorizeSecurityGroupIngressOutput::builder().build());
    let put_policy = mock!(aws_sdk_iam::Client::put_role_policy)
        .match_requests(|r| {
            r.policy_document().is_some_and(|d| {
                d.contains("s3:ListBucket") && d.contains("arn:aws:s3:::udacity-dend/log_data*")
            })
        })
        .then_output(|| PutRolePolicyOutput::builder().build());
    let mocks = Mocks {
        iam: vec![
            mock!(aws_sdk_iam::Client::get_role).then_error(no_such_role),
            mock!(aws_sdk_iam::Client::create_role)
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
            Change::Unchanged
        ],
        "{steps:#?}"
    );
    assert!(steps[4].what.contains("203.0.113.7/32"));
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
        ],
        ec2: vec![
            mock!(aws_sdk_ec2::Client::describe_security_group_rules).then_output(move || {
                DescribeSecurityGroupRulesOutput::builder()
                    .security_group_rules(rule("sgr-ours", iac::INGRESS_DESCRIPTION))
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
    let changes: Vec<Change> = report.0.lock().unwrap().iter().map(|s| s.change).collect();
    assert_eq!(
        changes,
        [
            Change::Deleted,
            Change::Deleted,
            Change::Deleted,
            Change::Deleted
        ]
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

fn data_api(rules: &[Rule]) -> RedshiftDataWarehouse {
    let client = mock_client!(aws_sdk_redshiftdata, rules);
    RedshiftDataWarehouse::with_client(
        runtime(),
        client,
        Target::Workgroup("sparkify-workgroup".into()),
        "dwh".into(),
        Polling {
            first: Duration::from_millis(1),
            max: Duration::from_millis(4),
            timeout: Duration::from_secs(5),
        },
    )
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
        mock!(aws_sdk_redshiftdata::Client::execute_statement)
            .then_output(|| ExecuteStatementOutput::builder().id("stmt-1").build()),
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
    let out = run(&["--dry-run", "--cidr", "0.0.0.0/0"]).code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("refusing"), "{stderr}");
}

/// A scripted Redshift behind the Data API: every statement is logged, COPY "loads" a fixed
/// number of rows and skips a fixed number of bad records (or fails, with `copy_fails`), and
/// queries answer from that script. Statement ids are the SQL itself, so each later call knows
/// which statement it is about.
struct FakeRedshift {
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    rules: Vec<Rule>,
}

const SONGS_STAGED: i64 = 10;
const EVENTS_STAGED: i64 = 100;

impl FakeRedshift {
    fn new(copy_fails: bool) -> FakeRedshift {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let executed = log.clone();
        let execute = mock!(aws_sdk_redshiftdata::Client::execute_statement).then_compute_output(
            move |input| {
                let sql = input.sql().unwrap_or_default().to_string();
                executed.lock().unwrap().push(sql.clone());
                ExecuteStatementOutput::builder()
                    .id(sql)
                    .session_id("session-1")
                    .build()
            },
        );
        let describe = mock!(aws_sdk_redshiftdata::Client::describe_statement).then_compute_output(
            move |input| {
                let sql = input.id().unwrap_or_default();
                let failed = copy_fails && sql.starts_with("COPY staging_events");
                let mut out = DescribeStatementOutput::builder()
                    .id(sql)
                    .has_result_set(sql.starts_with("SELECT"));
                out = if failed {
                    out.status(StatusString::Failed).error(
                        "ERROR: Load into table 'staging_events' failed. Check \
                         'sys_load_error_detail' system table for details.",
                    )
                } else {
                    out.status(StatusString::Finished)
                };
                out.build().unwrap()
            },
        );
        let answered = log.clone();
        let results = mock!(aws_sdk_redshiftdata::Client::get_statement_result)
            .then_compute_output(move |input| {
                let sql = input.id().unwrap_or_default();
                let log = answered.lock().unwrap();
                let last_copy = log
                    .iter()
                    .rev()
                    .find(|s| s.starts_with("COPY "))
                    .cloned()
                    .unwrap_or_default();
                let events = last_copy.starts_with("COPY staging_events");
                let rows: Vec<Vec<Field>> = if sql.contains("information_schema.tables") {
                    sparkify::schema::ALL_TABLES
                        .iter()
                        .map(|t| vec![Field::StringValue(t.name.into())])
                        .collect()
                } else if sql.contains("pg_last_copy_count") {
                    vec![vec![Field::LongValue(if events {
                        EVENTS_STAGED
                    } else {
                        SONGS_STAGED
                    })]]
                } else if sql.contains("sys_load_error_detail") || sql.contains("stl_load_errors") {
                    if events {
                        (1..=2)
                            .map(|line| {
                                vec![
                                    Field::StringValue(
                                        "s3://udacity-dend/log_data/2018/11/bad.json".into(),
                                    ),
                                    Field::LongValue(line),
                                    Field::StringValue("ts".into()),
                                    Field::StringValue("Invalid digit, Value 'a'".into()),
                                    Field::StringValue(String::new()),
                                ]
                            })
                            .collect()
                    } else {
                        vec![]
                    }
                } else if let Some(table) = sql
                    .strip_prefix("SELECT COUNT(*) FROM ")
                    .filter(|rest| !rest.starts_with('('))
                {
                    let count = match table {
                        "staging_songs" => SONGS_STAGED,
                        "staging_events" => EVENTS_STAGED,
                        "load_errors" => 2,
                        _ => 7,
                    };
                    vec![vec![Field::LongValue(count)]]
                } else {
                    // The key checks: no duplicates.
                    vec![vec![Field::LongValue(0)]]
                };
                GetStatementResultOutput::builder()
                    .column_metadata(ColumnMetadata::builder().name("c").build())
                    .set_records(Some(rows))
                    .build()
                    .unwrap()
            });
        FakeRedshift {
            log,
            rules: vec![execute, describe, results],
        }
    }

    fn warehouse(&self) -> RedshiftDataWarehouse {
        data_api(&self.rules)
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// The config of a Serverless workgroup (whose load errors are in `sys_load_error_detail`).
fn redshift_config() -> Config {
    let mut config = config();
    config.cluster.host = HOST.into();
    config.iam_role_arn = ROLE_ARN.into();
    config.s3.region = "us-west-2".into();
    config.dwh.workgroup = "sparkify-workgroup".into();
    config
}

#[test]
fn etl_on_redshift_copies_from_s3_and_keeps_what_it_skipped() {
    let fake = FakeRedshift::new(false);
    let mut warehouse = fake.warehouse();
    let report = sparkify::etl::run(
        &redshift_config(),
        &mut warehouse,
        &sparkify::etl::EtlOptions { max_errors: 5 },
        &sparkify::progress::Progress::hidden(),
    )
    .unwrap();
    assert_eq!(report.rejected(), 2);
    assert_eq!(report.sources[0].staged, SONGS_STAGED as u64);
    assert_eq!(report.sources[1].records, EVENTS_STAGED as u64 + 2);
    let summary = sparkify::report::etl_summary(&report);
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
    assert!(copy_events.contains("REGION 'us-west-2'") && copy_events.ends_with("MAXERROR 5"));
    assert!(log[position("COPY staging_songs")].contains("JSON 'auto ignorecase'"));
    let insert = &log[position("INSERT INTO load_errors")];
    assert!(
        insert.contains(
            "'s3://udacity-dend/log_data/2018/11/bad.json', 2, 'ts: Invalid digit, Value ''a'''"
        ),
        "{insert}"
    );
    assert!(position("INSERT INTO songplays") > position("COPY staging_events"));
    assert!(log.iter().any(|s| s.contains("FROM sys_load_error_detail")));
    assert_eq!(log.last().map(String::as_str), Some("COMMIT"));
    assert!(!log.iter().any(|s| s.contains(PASSWORD)));
}

#[test]
fn a_failed_redshift_copy_shows_its_load_errors_and_commits_nothing() {
    let fake = FakeRedshift::new(true);
    let mut warehouse = fake.warehouse();
    // A provisioned cluster: its load errors are in stl_load_errors.
    let mut config = redshift_config();
    config.cluster.host = "c.abc.us-west-2.redshift.amazonaws.com".into();
    let err = sparkify::etl::run(
        &config,
        &mut warehouse,
        &sparkify::etl::EtlOptions { max_errors: 0 },
        &sparkify::progress::Progress::hidden(),
    )
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("[S3] LOG_DATA = s3://udacity-dend/log_data"),
        "{err}"
    );
    assert!(
        err.contains("s3://udacity-dend/log_data/2018/11/bad.json:1: ts: Invalid digit"),
        "{err}"
    );
    assert!(err.contains("nothing was committed"), "{err}");
    let log = fake.log();
    assert!(
        log.iter().any(|s| s.contains("FROM stl_load_errors")),
        "{log:#?}"
    );
    assert!(log.iter().any(|s| s == "ROLLBACK"), "{log:#?}");
    assert!(!log.iter().any(|s| s == "COMMIT"), "{log:#?}");
}

#[test]
fn etl_on_redshift_needs_the_role() {
    let fake = FakeRedshift::new(false);
    let mut config = redshift_config();
    config.iam_role_arn.clear();
    let err = sparkify::etl::run(
        &config,
        &mut fake.warehouse(),
        &sparkify::etl::EtlOptions { max_errors: 0 },
        &sparkify::progress::Progress::hidden(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("[IAM_ROLE] ARN is empty: Redshift's COPY needs a role"),
        "{err}"
    );
}
