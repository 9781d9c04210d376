//! `mock_client!`: an AWS service client whose requests are answered by aws-smithy-mocks rules,
//! for the tests of the AWS control-plane and Data API calls (no real peer can run here).

/// A client of `$service` whose requests are answered by `$rules` (any matching rule), with
/// fixed test credentials and region and no SDK retries, so each test sees every call. (The
/// service crates' `test-util` feature would give the same through aws-smithy-mocks'
/// `mock_client!`, but it would make the test build's AWS crates differ from the binaries' and
/// compile them twice.)
macro_rules! mock_client {
    ($service:ident, $rules:expr) => {{
        let mut interceptor = aws_smithy_mocks::MockResponseInterceptor::new()
            .rule_mode(aws_smithy_mocks::RuleMode::MatchAny);
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
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }};
}
