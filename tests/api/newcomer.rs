//! A newcomer's first ten minutes: `scripts/try.sh` (the README's "Try it") works as written.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::both_wirings;
use crate::helpers::{Wiring, spawn_app};

both_wirings!(the_try_script_runs_every_readme_step_against_a_running_server,);

async fn the_try_script_runs_every_readme_step_against_a_running_server(wiring: Wiring) {
    let app = spawn_app(wiring).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/try.sh");
    let base = app.url("");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(script)
            .env("ONBOARD_URL", base)
            .env_remove("CODE")
            .env_remove("PHONE")
            .stdin(Stdio::null())
            .output()
            .expect("bash runs")
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "try.sh failed:\n{said}");
    for step in [
        "POST /api/v1/auth/otp/verify",
        "GET /api/v1/members/me",
        "GET /api/v1/invites/",
        "PUT /api/v1/groups/",
        "GET /api/v1/groups/",
        "every step answered 2xx",
    ] {
        assert!(said.contains(step), "the script shows {step:?}:\n{said}");
    }
}
