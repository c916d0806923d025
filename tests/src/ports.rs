//! Free TCP ports on the loopback interface.
//!
//! The OS picks an unused port when we bind port 0; we release it at once and hand the number to
//! the process we start. Another process could take it in between, so start-up helpers treat a
//! bind failure as an ordinary start-up error with the log to show for it.

use std::net::{Ipv4Addr, TcpListener};

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Returns `n` distinct free ports, holding each until all are chosen so none repeats.
pub fn free_ports<const N: usize>() -> std::io::Result<[u16; N]> {
    let mut held = Vec::with_capacity(N);
    let mut ports = [0u16; N];
    for port in &mut ports {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        *port = listener.local_addr()?.port();
        held.push(listener);
    }
    Ok(ports)
}
