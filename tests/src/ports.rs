//! Free TCP ports, on the loopback interface or on another local IPv4 address.
//!
//! The OS picks an unused port when we bind port 0; we release it at once and hand the number to
//! the process we start. Another process could take it in between, so start-up helpers treat a
//! bind failure as an ordinary start-up error with the log to show for it.

use std::net::{Ipv4Addr, TcpListener};

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    free_port_on(Ipv4Addr::LOCALHOST)
}

/// Returns a TCP port on `ip` (an address of this machine) that was free a moment ago.
///
/// A port free on 127.0.0.1 may be taken on another address (and the other way round), so a
/// server that listens elsewhere gets its port from the address it will bind.
pub fn free_port_on(ip: Ipv4Addr) -> std::io::Result<u16> {
    let listener = TcpListener::bind((ip, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Returns `n` distinct free ports on 127.0.0.1, holding each until all are chosen so none
/// repeats.
pub fn free_ports<const N: usize>() -> std::io::Result<[u16; N]> {
    free_ports_on([Ipv4Addr::LOCALHOST; N])
}

/// Returns one free port on each of `ips`, all different numbers: a number then names one
/// listener even when the addresses differ (127.0.0.1:P and 127.0.0.2:P could both be bound,
/// and "nothing answers on 127.0.0.1:P" would then prove nothing). Each port is held until all
/// are chosen, and a repeat stays held too, so it is not offered again.
pub fn free_ports_on<const N: usize>(ips: [Ipv4Addr; N]) -> std::io::Result<[u16; N]> {
    let mut held = Vec::with_capacity(N);
    let mut ports = [0u16; N];
    for (i, ip) in ips.into_iter().enumerate() {
        ports[i] = loop {
            let listener = TcpListener::bind((ip, 0))?;
            let port = listener.local_addr()?.port();
            held.push(listener);
            if !ports[..i].contains(&port) {
                break port;
            }
        };
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_on_different_addresses_are_distinct_and_bindable() {
        let elsewhere = Ipv4Addr::new(127, 0, 0, 2);
        let [a, b, c] = free_ports_on([elsewhere, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST])
            .expect("three free ports");
        assert!(a != b && b != c && a != c, "{a} {b} {c}");
        TcpListener::bind((elsewhere, a)).expect("the port on 127.0.0.2 is free");
    }
}
