//! The `onboard` binary as a process, as an operator (or the container image) runs it:
//! `onboard serve` with only the environment it is given, away from any `.env`, its standard
//! error written to a file the test reads.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::onboard_bin;

/// A running `onboard serve`; killed and its log removed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    stderr: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

impl ServerProcess {
    /// Starts `onboard serve` on a free port of 127.0.0.1 with exactly `env` (plus
    /// `ONBOARD_ADDR`) and waits until `/health/ready` answers 200.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut all = vec![("ONBOARD_ADDR", addr.as_str())];
        all.extend_from_slice(env);
        Self::start_on(port, &all).await
    }

    /// Starts `onboard serve` with exactly `env`, which makes it listen on `port`, and waits
    /// until `http://127.0.0.1:<port>/health/ready` answers 200.
    pub async fn start_on(port: u16, env: &[(&str, &str)]) -> Self {
        let stderr =
            std::env::temp_dir().join(format!("onboard-stderr-{}.log", uuid::Uuid::now_v7()));
        let file = std::fs::File::create(&stderr).expect("a log file");
        let child = Command::new(onboard_bin())
            .arg("serve")
            .env_clear()
            .current_dir(std::env::temp_dir())
            .env("ONBOARD_WORKERS", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("the server binary starts");
        let mut server = Self { child, stderr, base: format!("http://127.0.0.1:{port}") };
        server.wait_until_ready().await;
        server
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the server wrote to standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits (up to 10 s) until the server's standard error has a line for which `matches`
    /// holds, and returns it.
    pub async fn wait_for_line(&self, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.stderr().lines().find(|l| matches(l)) {
                return line.to_owned();
            }
            assert!(Instant::now() < deadline, "no such line in:\n{}", self.stderr());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_until_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited with {status}:\n{}", self.stderr());
            }
            let ready = client
                .get(self.url("/health/ready"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "not ready within 60 s:\n{}", self.stderr());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}
