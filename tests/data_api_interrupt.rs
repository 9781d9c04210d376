//! Ctrl-C during a statement sent through the Redshift Data API: the statement is cancelled
//! (CancelStatement), the run fails as interrupted, and the rollback still goes through. In a
//! test binary of its own, since an interrupt marks the whole process.

#[macro_use]
#[path = "common/mock_client.rs"]
mod mock_client;

use std::time::Duration;

use aws_sdk_redshiftdata::operation::cancel_statement::CancelStatementOutput;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::operation::execute_statement::ExecuteStatementOutput;
use aws_sdk_redshiftdata::types::StatusString;
use aws_smithy_mocks::mock;
use sparkify::warehouse::{Polling, RedshiftDataWarehouse, Target, Warehouse};

#[test]
fn ctrl_c_cancels_the_running_statement_and_lets_the_rollback_through() {
    let executed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = executed.clone();
    let execute =
        mock!(aws_sdk_redshiftdata::Client::execute_statement).then_compute_output(move |input| {
            let sql = input.sql().unwrap_or_default().to_string();
            log.lock().unwrap().push(sql.clone());
            ExecuteStatementOutput::builder()
                .id(sql)
                .session_id("session-1")
                .build()
        });
    // The INSERT runs until cancelled; anything else finishes at once.
    let describe =
        mock!(aws_sdk_redshiftdata::Client::describe_statement).then_compute_output(|input| {
            let running = input.id().unwrap_or_default().starts_with("INSERT");
            DescribeStatementOutput::builder()
                .id(input.id().unwrap_or_default())
                .status(if running {
                    StatusString::Started
                } else {
                    StatusString::Finished
                })
                .has_result_set(false)
                .build()
                .unwrap()
        });
    let cancel = mock!(aws_sdk_redshiftdata::Client::cancel_statement)
        .match_requests(|input| input.id() == Some("INSERT INTO songplays SELECT 1"))
        .then_output(|| CancelStatementOutput::builder().status(true).build());
    let rules = [execute, describe, cancel];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut warehouse = RedshiftDataWarehouse::with_client(
        runtime,
        mock_client!(aws_sdk_redshiftdata, rules),
        Target::Workgroup("sparkify-workgroup".into()),
        "dwh".into(),
        Polling {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
            timeout: Duration::from_secs(30),
            session_keep_alive: Duration::from_secs(60),
        },
    );
    warehouse.execute("BEGIN").unwrap();
    // Ctrl-C a moment after the INSERT started.
    let signal = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            sparkify::interrupt::request(),
            "an open warehouse was registered"
        );
    });
    let err = warehouse
        .execute("INSERT INTO songplays SELECT 1")
        .unwrap_err();
    signal.join().unwrap();
    assert!(
        err.chain()
            .any(|cause| cause.is::<sparkify::interrupt::Interrupted>()),
        "{err:#}"
    );
    assert_eq!(rules[2].num_calls(), 1, "the running INSERT was cancelled");
    // Nothing more is sent, except the rollback.
    assert!(warehouse.execute("DELETE FROM users").is_err());
    warehouse.rollback().unwrap();
    assert_eq!(
        *executed.lock().unwrap(),
        ["BEGIN", "INSERT INTO songplays SELECT 1", "ROLLBACK"]
    );
}
