//! Composing a reminder as a MIME message and handing it to the mail server with lettre.
//!
//! One SMTP conversation per email and no connection pool: reminders arrive one by one at
//! human rates, and a fresh connection has no stale-socket failure mode to classify. The whole
//! conversation runs under one deadline (`SMTP_TIMEOUT_SECS`), which is what lets a `sending`
//! claim's TTL be chosen safely longer than any send.
//!
//! The outcome is reduced to what the caller must decide, [`SendError::is_permanent`]:
//!
//! * **permanent** — a `5xx` reply: this server will not take this message (unknown mailbox,
//!   rejected recipient, message refused). Sending again cannot help; the event goes to the
//!   dead-letter topic, from where it can be replayed after a fix.
//! * **transient** — everything else: no connection, a timeout, a `4xx` reply, TLS trouble, an
//!   unparseable reply, and also `5xx` replies to *authentication* (530/534/535/538), which say
//!   our credentials are wrong rather than the message: dropping every reminder until someone
//!   fixes a password would lose them all.
//!
//! An address that cannot be parsed is found before any conversation ([`ComposeError`]) and is
//! permanent too. Error texts pass through [`redact`] so a log line shows the recipient's
//! domain, never the mailbox.

use secrecy::ExposeSecret;
use std::fmt;
use std::time::Duration;

use contracts::ReminderDueData;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

use crate::config::{SmtpConfig, SmtpCredentials, SmtpTls};
use crate::render::{one_line, render};

/// SMTP reply codes that reject our credentials, not the message.
const AUTH_FAILURE_CODES: &[u16] = &[530, 534, 535, 538];

/// Longest server text kept in an error (replies can be long multi-line banners).
const MAX_DETAIL_CHARS: usize = 300;

/// Sends reminder emails through one mail server; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    deadline: Duration,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The mail transport could not be set up (a TLS configuration problem).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS for SMTP host `{host}`")]
pub struct MailerError {
    host: String,
    #[source]
    source: lettre::transport::smtp::Error,
}

/// A reminder ready to send.
#[derive(Debug, Clone)]
pub struct Composed {
    /// The MIME message (`multipart/alternative`: text, then HTML).
    pub message: Message,
    /// Its `Message-ID`, derived from the event id so every attempt carries the same one.
    pub message_id: String,
    /// The recipient's domain, the only part of the address we log.
    pub recipient_domain: String,
}

/// The reminder cannot become an email at all; permanent.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// `recipient_email` is not an address lettre accepts.
    #[error("recipient address is not a valid email address")]
    InvalidAddress(#[source] lettre::address::AddressError),
    /// The message could not be built (e.g. a header lettre refuses).
    #[error("the email could not be built")]
    Build(#[source] lettre::error::Error),
}

/// The mail server did not accept the message.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct SendError {
    permanent: bool,
    code: Option<u16>,
    /// What went wrong, with the recipient's mailbox redacted.
    detail: String,
}

impl SendError {
    /// Whether sending this message again is pointless (see the [module docs](self)).
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The SMTP reply code, if the server answered with one.
    pub fn code(&self) -> Option<u16> {
        self.code
    }

    /// Classifies a lettre error and redacts `recipient` from its text.
    fn classify(error: &lettre::transport::smtp::Error, recipient: &Address) -> Self {
        let code = error.status().map(u16::from);
        let permanent =
            error.is_permanent() && !code.is_some_and(|c| AUTH_FAILURE_CODES.contains(&c));
        Self {
            permanent,
            code,
            detail: redact(&chain(error), recipient),
        }
    }
}

/// What the server said when it took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The reply code (250 normally).
    pub code: u16,
    /// The first reply line, often with the server's queue id.
    pub reply: String,
}

impl Mailer {
    /// A mailer for `config`, authenticating with `credentials` if given.
    pub fn new(
        config: &SmtpConfig,
        credentials: Option<&SmtpCredentials>,
    ) -> Result<Self, MailerError> {
        let tls_error = |source| MailerError {
            host: config.host.clone(),
            source,
        };
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => {
                Tls::Required(TlsParameters::new(config.host.clone()).map_err(tls_error)?)
            }
            SmtpTls::Tls => {
                Tls::Wrapper(TlsParameters::new(config.host.clone()).map_err(tls_error)?)
            }
        };
        // `builder_dangerous` only means "no TLS chosen for you"; `tls` sets it explicitly.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout))
            .hello_name(ClientId::Domain(config.hello_name.clone()));
        if let Some(credentials) = credentials {
            builder = builder.credentials(Credentials::new(
                credentials.username.expose_secret().to_owned(),
                credentials.password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from: config.from.clone(),
            deadline: config.timeout,
        })
    }

    /// Builds the email for `reminder`, delivered as CloudEvent `event_id`.
    pub fn compose(
        &self,
        event_id: &str,
        reminder: &ReminderDueData,
    ) -> Result<Composed, ComposeError> {
        let address: Address = reminder
            .recipient_email
            .trim()
            .parse()
            .map_err(ComposeError::InvalidAddress)?;
        let name = reminder
            .recipient_name
            .as_deref()
            .map(one_line)
            .filter(|n| !n.is_empty());
        let recipient_domain = address.domain().to_owned();
        let message_id = format!(
            "<{}@{}>",
            Uuid::new_v5(&crate::EVENT_ID_NAMESPACE, event_id.as_bytes()),
            self.from.email.domain()
        );
        let rendered = render(reminder);
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name, address))
            .subject(rendered.subject)
            .message_id(Some(message_id.clone()))
            // RFC 3834: tells auto-responders (vacation replies) not to answer.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(ComposeError::Build)?;
        Ok(Composed {
            message,
            message_id,
            recipient_domain,
        })
    }

    /// Holds one SMTP conversation for `composed` under the deadline.
    pub async fn send(&self, composed: Composed) -> Result<Accepted, SendError> {
        let recipient = composed.message.envelope().to().first().cloned();
        let result =
            tokio::time::timeout(self.deadline, self.transport.send(composed.message)).await;
        match result {
            Ok(Ok(response)) => Ok(Accepted {
                code: u16::from(response.code()),
                reply: truncate(response.first_line().unwrap_or_default()),
            }),
            Ok(Err(error)) => Err(match &recipient {
                Some(recipient) => SendError::classify(&error, recipient),
                None => SendError {
                    permanent: false,
                    code: None,
                    detail: truncate(&chain(&error)),
                },
            }),
            // Cancelled mid-conversation; if that was after the data went out, the server may
            // still deliver it (the unavoidable SMTP ambiguity, RFC 1047).
            Err(_) => Err(SendError {
                permanent: false,
                code: None,
                detail: format!("smtp conversation exceeded {:?}", self.deadline),
            }),
        }
    }
}

/// An error and its sources on one line (sources already in the text are not repeated).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        // lettre's Display already appends its direct source.
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

/// Replaces every occurrence of `address` in `text` (ignoring ASCII case) with
/// `***@<domain>`, and bounds the length.
pub fn redact(text: &str, address: &Address) -> String {
    let needle = address.to_string().to_ascii_lowercase();
    let replacement = format!("***@{}", address.domain());
    // ASCII lower-casing keeps byte offsets, so positions found in `lower` are valid in `text`.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (start, _) in lower.match_indices(&needle) {
        if start < rest {
            continue;
        }
        out.push_str(&text[rest..start]);
        out.push_str(&replacement);
        rest = start + needle.len();
    }
    out.push_str(&text[rest..]);
    truncate(&out)
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_DETAIL_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_DETAIL_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_mailbox_but_keeps_the_domain() {
        let address: Address = "Ada.Lovelace@Example.org".parse().unwrap();
        let text = "permanent error (550): 5.1.1 <ada.lovelace@example.org>: unknown; \
                    ADA.LOVELACE@EXAMPLE.ORG again";
        let redacted = redact(text, &address);
        assert_eq!(
            redacted,
            "permanent error (550): 5.1.1 <***@Example.org>: unknown; ***@Example.org again"
        );
        let long = "é".repeat(1000);
        assert_eq!(
            redact(&long, &address).chars().count(),
            MAX_DETAIL_CHARS + 1
        );
    }
}
