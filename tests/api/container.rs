//! The container image's way of running the server: `Dockerfile`'s `ENTRYPOINT`, `CMD`, `ENV`
//! and `HEALTHCHECK`, with `compose.yaml`'s environment for the `onboard` service, its URLs
//! pointed at this test's own PostgreSQL database and Redis prefix. (Building the image itself
//! needs Docker, which the tests do not have; its build step is the release build of
//! `make bench`.)

use std::path::Path;
use std::process::Command;

use onboard_postgres::testing::TestDatabase;
use serde_json::{Value, json};

use crate::helpers::{RedisPrefix, onboard_bin, phone};
use crate::process::{ServerProcess, free_port};

fn workspace_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `NAME: value` lines of the `onboard` service's `environment:` in compose.yaml.
fn compose_environment() -> Vec<(String, String)> {
    let compose = workspace_file("compose.yaml");
    let mut in_service = false;
    let mut in_environment = false;
    let mut env = Vec::new();
    for line in compose.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match indent {
            2 => in_service = trimmed == "onboard:",
            4 => in_environment = in_service && trimmed == "environment:",
            6 if in_environment => {
                let (name, value) = trimmed.split_once(':').expect("NAME: value");
                env.push((name.trim().to_owned(), value.trim().trim_matches('"').to_owned()));
            }
            _ => {}
        }
    }
    assert!(!env.is_empty(), "compose.yaml has the onboard service's environment");
    env
}

/// The `ENV NAME=value` lines of the Dockerfile's runtime stage.
fn dockerfile_environment(dockerfile: &str) -> Vec<(String, String)> {
    let runtime = dockerfile.rsplit("\nFROM ").next().expect("a runtime stage");
    runtime
        .lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .filter_map(|l| l.split_once('='))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_as_the_image_runs_it_with_the_compose_environment() {
    let dockerfile = workspace_file("Dockerfile");
    assert!(dockerfile.contains(r#"ENTRYPOINT ["onboard"]"#), "{dockerfile}");
    assert!(dockerfile.contains(r#"CMD ["serve"]"#), "{dockerfile}");
    assert!(dockerfile.contains(r#"CMD ["onboard", "health"]"#), "the HEALTHCHECK");
    assert!(dockerfile.contains("\nUSER 10001"), "not root");

    // A fresh database: the image migrates it at start (MIGRATE_ON_START in compose.yaml).
    let db = TestDatabase::empty().await;
    let redis = RedisPrefix::new();
    let port = free_port();
    let mut env = dockerfile_environment(&dockerfile);
    env.extend(compose_environment());
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in &mut env {
        seen.insert(name.clone());
        match name.as_str() {
            "DATABASE_URL" => *value = db.url().to_owned(),
            "REDIS_URL" => value.clone_from(&redis.url),
            "ONBOARD_ADDR" => {
                assert!(value.starts_with("0.0.0.0:"), "listens on every interface: {value}");
                *value = format!("0.0.0.0:{port}");
            }
            _ => {}
        }
    }
    for needed in ["DATABASE_URL", "REDIS_URL", "ONBOARD_ADDR", "LOG_FORMAT"] {
        assert!(seen.contains(needed), "the image's environment sets {needed}");
    }
    env.push(("REDIS_KEY_PREFIX".to_owned(), redis.prefix.clone()));
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let server = ServerProcess::start_on(port, &env).await;

    // The HEALTHCHECK's command, as the image runs it (same environment).
    let health = Command::new(onboard_bin())
        .arg("health")
        .env_clear()
        .current_dir(std::env::temp_dir())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
    let unhealthy = Command::new(onboard_bin())
        .arg("health")
        .env_clear()
        .env("ONBOARD_ADDR", format!("0.0.0.0:{}", free_port()))
        .output()
        .unwrap();
    assert!(!unhealthy.status.success(), "nothing listens there");

    // It serves, on PostgreSQL + Redis.
    let client = reqwest::Client::new();
    let sent: Value = client
        .post(server.url("/api/v1/auth/otp"))
        .json(&json!({ "phone": phone(1) }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = sent["dev_code"].as_str().expect("compose echoes codes");
    let signed = client
        .post(server.url("/api/v1/auth/otp/verify"))
        .json(&json!({ "phone": phone(1), "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), reqwest::StatusCode::OK);
    server.wait_for_line(|l| l.contains("/api/v1/auth/otp/verify")).await;

    // Its logs are JSON lines, and a clean start warns of nothing.
    for line in server.stderr().lines() {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"));
        assert!(event["level"] == "INFO" || event["level"] == "DEBUG", "{line}");
    }
    assert!(server.stderr().contains(r#""storage":"PostgreSQL + Redis""#), "{}", server.stderr());
}
