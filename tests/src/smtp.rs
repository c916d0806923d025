//! An SMTP sink: a real SMTP server on a free loopback port that keeps what it receives.
//! [`SmtpSink::start_at`] listens on another IPv4 address instead (pods of a local Kubernetes
//! reach the host through a veth address, not through its 127.0.0.1).
//!
//! It speaks the part of SMTP a mail client needs (EHLO/HELO, MAIL, RCPT, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT), so the services under test hold real SMTP conversations.
//! Tests can stop it (connections are then refused, like a mail server that is down), start
//! it again on the same port, have it refuse chosen recipients with a permanent `550`, script
//! the reply to every `RCPT`, and hold the reply to `DATA` until they release it (a send in
//! flight while something else happens).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One message as received.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message as sent after `DATA` (headers and body, dot-unstuffed, CRLF line ends).
    pub data: String,
    /// When the sink accepted the message (the final `.` of `DATA`).
    pub received_at: std::time::SystemTime,
}

impl ReceivedMail {
    /// The value of the first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
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

/// Holds the reply to `DATA` (see [`SmtpSink::hold_data`]): `reached` is notified once the
/// message is stored, and the reply waits for `release`.
#[derive(Clone, Debug, Default)]
pub struct DataGate {
    /// Notified when a message's data is in and its reply is being held.
    pub reached: Arc<Notify>,
    /// Notify to let the held reply go.
    pub release: Arc<Notify>,
}

#[derive(Default)]
struct Shared {
    messages: Vec<ReceivedMail>,
    rejected_suffixes: Vec<String>,
    connections: usize,
    /// Reply to every `RCPT` instead of the normal one; `None`: accept (or reject by suffix).
    rcpt_reply: Option<String>,
    data_gate: Option<DataGate>,
    /// Connections still to be accepted and then left without a greeting.
    stalled_greetings: usize,
    /// How many connections were stalled so far.
    stalled: usize,
}

/// A running (or stopped) SMTP sink.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SmtpSink {
    /// Starts a sink on a free 127.0.0.1 port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(0).await
    }

    /// Starts a sink on 127.0.0.1:`port` (0: a free port).
    pub async fn start_on(port: u16) -> std::io::Result<Self> {
        Self::start_at(Ipv4Addr::LOCALHOST, port).await
    }

    /// Starts a sink on `ip`:`port` (0: a free port); `ip` must be an address of this machine.
    pub async fn start_at(ip: Ipv4Addr, port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind((ip, port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let accept = Some(tokio::spawn(accept_loop(listener, Arc::clone(&shared))));
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// The port it listens on (also while stopped: `resume` binds it again).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address and port it listens on (`127.0.0.1:<port>` unless started with
    /// [`SmtpSink::start_at`]), for a mail client's host and port settings.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.lock().messages.clone()
    }

    /// How many messages it has received so far: cheaper than [`SmtpSink::messages`] for a
    /// caller polling for thousands of them.
    pub fn message_count(&self) -> usize {
        self.lock().messages.len()
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.lock().connections
    }

    /// Answers every `RCPT` with `reply` (e.g. `451 4.3.0 try later`); `None` restores the
    /// normal answer.
    pub fn reply_to_rcpt(&self, reply: Option<&str>) {
        self.lock().rcpt_reply = reply.map(str::to_owned);
    }

    /// Holds every reply to `DATA` behind `gate`.
    pub fn hold_data(&self, gate: DataGate) {
        self.lock().data_gate = Some(gate);
    }

    /// Accepts the next `n` connections and then says nothing (no `220` greeting) until the
    /// client gives up and closes: a server that is up but hung.
    pub fn stall_next_greetings(&self, n: usize) {
        self.lock().stalled_greetings = n;
    }

    /// How many connections were left without a greeting.
    pub fn stalled(&self) -> usize {
        self.lock().stalled
    }

    /// Replies to `DATA` at once again (a reply already waiting still waits for its gate).
    pub fn stop_holding_data(&self) {
        self.lock().data_gate = None;
    }

    /// Refuses recipients whose address ends with `suffix` with `550 5.1.1`.
    pub fn reject_recipients_ending_with(&self, suffix: &str) {
        self.lock()
            .rejected_suffixes
            .push(suffix.to_ascii_lowercase());
    }

    /// Stops listening: new connections are refused until [`SmtpSink::resume`].
    pub fn pause(&mut self) {
        if let Some(task) = self.accept.take() {
            task.abort();
        }
    }

    /// Listens again on the same port, keeping the messages received so far.
    pub async fn resume(&mut self) -> std::io::Result<()> {
        if self.accept.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        self.accept = Some(tokio::spawn(accept_loop(
            listener,
            Arc::clone(&self.shared),
        )));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        lock(&self.shared)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.pause();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    // Dropping the listener (when this task is aborted) closes the port.
    let mut sessions = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        lock(&shared).connections += 1;
        sessions.spawn(session(stream, Arc::clone(&shared)));
    }
}

/// One SMTP conversation. Errors end the connection, as a real server would.
async fn session(stream: TcpStream, shared: Arc<Mutex<Shared>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let stall = {
        let mut shared = lock(&shared);
        let stall = shared.stalled_greetings > 0;
        if stall {
            shared.stalled_greetings -= 1;
            shared.stalled += 1;
        }
        stall
    };
    if stall {
        // Read (and ignore) until the client hangs up; never answer.
        let mut sink = Vec::new();
        lines.read_to_end(&mut sink).await?;
        return Ok(());
    }
    write.write_all(b"220 todo-dapr-sink ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::<String>::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: std::borrow::Cow<'static, str> = match verb.as_str() {
            "EHLO" => "250-todo-dapr-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into(),
            "HELO" => "250 todo-dapr-sink\r\n".into(),
            "MAIL" => {
                from = angle_address(command);
                to.clear();
                "250 2.1.0 OK\r\n".into()
            }
            "RCPT" => {
                let rcpt = angle_address(command);
                let (scripted, rejected) = {
                    let shared = lock(&shared);
                    let lower = rcpt.to_ascii_lowercase();
                    (
                        shared.rcpt_reply.clone(),
                        shared
                            .rejected_suffixes
                            .iter()
                            .any(|s| lower.ends_with(s.as_str())),
                    )
                };
                if let Some(reply) = scripted {
                    format!("{reply}\r\n").into()
                } else if rejected {
                    "550 5.1.1 mailbox unavailable\r\n".into()
                } else {
                    to.push(rcpt);
                    "250 2.1.5 OK\r\n".into()
                }
            }
            "DATA" if to.is_empty() => "554 5.5.1 no valid recipients\r\n".into(),
            "DATA" => {
                write
                    .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    let content = line.trim_end_matches(['\r', '\n']);
                    if content == "." {
                        break;
                    }
                    data.push_str(content.strip_prefix('.').unwrap_or(content));
                    data.push_str("\r\n");
                }
                let (queued, gate) = {
                    let mut shared = lock(&shared);
                    shared.messages.push(ReceivedMail {
                        from: std::mem::take(&mut from),
                        to: std::mem::take(&mut to),
                        data,
                        received_at: std::time::SystemTime::now(),
                    });
                    (shared.messages.len(), shared.data_gate.clone())
                };
                if let Some(gate) = gate {
                    gate.reached.notify_one();
                    gate.release.notified().await;
                }
                format!("250 2.0.0 Ok: queued as Q{queued}\r\n").into()
            }
            "RSET" => {
                from.clear();
                to.clear();
                "250 2.0.0 OK\r\n".into()
            }
            "NOOP" => "250 2.0.0 OK\r\n".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 command not implemented\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// The shared state; a panic while holding the lock only happens in a failing test, so the
/// data is kept.
fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The address inside `<…>` of a MAIL/RCPT command.
fn angle_address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    async fn converse(port: u16, script: &[&str]) -> String {
        converse_at(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), script).await
    }

    async fn converse_at(addr: SocketAddr, script: &[&str]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        for line in script {
            stream.write_all(line.as_bytes()).await.unwrap();
        }
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn stores_a_message_and_refuses_chosen_recipients() {
        let sink = SmtpSink::start().await.unwrap();
        sink.reject_recipients_ending_with("@invalid.test");
        let out = converse(
            sink.port(),
            &[
                "EHLO me\r\n",
                "MAIL FROM:<a@x.test>\r\n",
                "RCPT TO:<nobody@invalid.test>\r\n",
                "RCPT TO:<b@y.test>\r\n",
                "DATA\r\n",
                "Subject: hi\r\n\r\n..dotted\r\nbody\r\n.\r\n",
                "QUIT\r\n",
            ],
        )
        .await;
        assert!(out.contains("550 5.1.1"), "{out}");
        assert!(out.contains("250 2.0.0 Ok: queued as Q1"), "{out}");
        let mail = &sink.messages()[0];
        assert_eq!(mail.from, "a@x.test");
        assert_eq!(mail.to, vec!["b@y.test".to_owned()]);
        assert_eq!(mail.header("subject").as_deref(), Some("hi"));
        assert!(
            mail.data.ends_with(".dotted\r\nbody\r\n"),
            "{:?}",
            mail.data
        );
    }

    #[tokio::test]
    async fn refuses_connections_while_paused() {
        let mut sink = SmtpSink::start().await.unwrap();
        sink.pause();
        // The accept task is aborted; wait until the port is really closed.
        let port = sink.port();
        crate::wait::until(
            "the port to close",
            std::time::Duration::from_secs(5),
            || async {
                Ok::<_, std::convert::Infallible>(
                    TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_err()
                        .then_some(()),
                )
            },
        )
        .await
        .unwrap();
        sink.resume().await.unwrap();
        let out = converse(port, &["QUIT\r\n"]).await;
        assert!(out.starts_with("220"), "{out}");
    }

    /// 127.0.0.2 is on Linux's loopback without configuration: "not 127.0.0.1" for free.
    #[tokio::test]
    async fn listens_on_the_address_it_is_given_only() {
        let ip = Ipv4Addr::new(127, 0, 0, 2);
        let sink = SmtpSink::start_at(ip, 0).await.unwrap();
        assert_eq!(sink.addr().ip(), ip);
        let out = converse_at(sink.addr(), &["HELO me\r\n", "QUIT\r\n"]).await;
        assert!(out.starts_with("220"), "{out}");
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, sink.port()))
                .await
                .is_err(),
            "the sink also answers on 127.0.0.1"
        );
    }
}
