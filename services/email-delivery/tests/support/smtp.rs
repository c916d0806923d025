//! A small scripted SMTP server on a loopback port: enough of RFC 5321 for lettre (greeting,
//! EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT), with the reply to
//! `RCPT` scriptable (accept, 4xx, 5xx) and an optional gate that holds the reply to `DATA`
//! until the test releases it, to have a send in flight while something else happens.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One message as received.
#[derive(Clone, Debug)]
pub(crate) struct Mail {
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    /// Headers and body after `DATA`, dot-unstuffed, CRLF line ends.
    pub(crate) data: String,
}

impl Mail {
    /// The first header `name` (case-insensitive), unfolded.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push(' ');
                    v.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }
}

/// Holds the reply to `DATA`: `reached` is notified when the data is in, the reply waits for
/// `release`.
#[derive(Clone, Default)]
pub(crate) struct Gate {
    pub(crate) reached: Arc<Notify>,
    pub(crate) release: Arc<Notify>,
}

#[derive(Default)]
struct Shared {
    mails: Vec<Mail>,
    connections: usize,
    /// Reply to `RCPT`; `None` is `250`.
    rcpt_reply: Option<String>,
    gate: Option<Gate>,
}

pub(crate) struct FakeSmtp {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    accept: JoinHandle<()>,
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FakeSmtp {
    /// Starts on a free port.
    pub(crate) async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts on `addr` (e.g. a port a test reserved while the server was "down").
    pub(crate) async fn start_on(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Self {
            addr,
            shared,
            accept,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    pub(crate) fn mails(&self) -> Vec<Mail> {
        self.shared.lock().unwrap().mails.clone()
    }

    pub(crate) fn connections(&self) -> usize {
        self.shared.lock().unwrap().connections
    }

    /// Answers `RCPT` with `reply` (e.g. `550 5.1.1 <x@y>: unknown`); `None` accepts.
    pub(crate) fn reply_to_rcpt(&self, reply: Option<&str>) {
        self.shared.lock().unwrap().rcpt_reply = reply.map(str::to_owned);
    }

    /// Holds every reply to `DATA` behind `gate`.
    pub(crate) fn hold_data(&self, gate: Gate) {
        self.shared.lock().unwrap().gate = Some(gate);
    }
}

/// A loopback port nobody listens on (bound, then released).
pub(crate) async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

async fn accept_loop(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        shared.lock().unwrap().connections += 1;
        tokio::spawn(session(stream, Arc::clone(&shared)));
    }
}

async fn session(stream: TcpStream, shared: Arc<Mutex<Shared>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 fake.test ESMTP\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => "250-fake.test\r\n250 8BITMIME".to_owned(),
            "HELO" | "NOOP" => "250 ok".to_owned(),
            "RSET" => {
                from.clear();
                to.clear();
                "250 ok".to_owned()
            }
            "MAIL" => {
                from = address_in(&command);
                "250 2.1.0 ok".to_owned()
            }
            "RCPT" => {
                let reply = shared.lock().unwrap().rcpt_reply.clone();
                match reply {
                    Some(reply) => reply,
                    None => {
                        to.push(address_in(&command));
                        "250 2.1.5 ok".to_owned()
                    }
                }
            }
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let data = read_data(&mut lines).await?;
                let (gate, queued) = {
                    let mut shared = shared.lock().unwrap();
                    shared.mails.push(Mail {
                        from: std::mem::take(&mut from),
                        to: std::mem::take(&mut to),
                        data,
                    });
                    (shared.gate.clone(), shared.mails.len())
                };
                if let Some(gate) = gate {
                    gate.reached.notify_one();
                    gate.release.notified().await;
                }
                format!("250 2.0.0 Ok: queued as Q{queued}")
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 command not recognized".to_owned(),
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

/// Reads the message after `DATA` up to the lone `.`, undoing dot-stuffing.
async fn read_data<R: AsyncBufReadExt + Unpin>(lines: &mut R) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == ".\r\n" {
            return Ok(data);
        }
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
    }
}

/// The address between `<` and `>` of a `MAIL FROM:`/`RCPT TO:` command.
fn address_in(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_owned())
        .unwrap_or_default()
}
