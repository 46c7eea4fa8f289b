//! `onboard health`: asks a running server on this host whether it is ready, for container
//! health checks (the runtime image has no curl).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};

/// How long the check may take in all.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Where a server bound to `listen` (`ONBOARD_ADDR`) answers on this host: an unspecified
/// address (`0.0.0.0`, `[::]`) becomes the loopback.
pub fn local_address(listen: &str) -> anyhow::Result<SocketAddr> {
    let mut addr = listen
        .to_socket_addrs()
        .with_context(|| format!("ONBOARD_ADDR {listen:?} is no address"))?
        .next()
        .with_context(|| format!("ONBOARD_ADDR {listen:?} resolves to nothing"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(addr)
}

/// `GET /health/ready` on `addr`: `Ok` on a 200, an error saying why otherwise.
pub fn check_ready(addr: SocketAddr) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .with_context(|| format!("nothing answers on {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream
        .write_all(b"GET /health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("/health/ready on {addr} answered {status:?}");
    }
    Ok(())
}
