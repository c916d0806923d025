//! Property tests of turning a reminder event into an email (issue 12, generated bad input):
//! every text of a `reminder.due` event comes from a user (title, description, name) or a
//! token (address), so [`Mailer::compose`] and [`render`] get any text — control characters,
//! CR/LF header injections, HTML, every Unicode plane — and any timestamp chrono holds. Either
//! the email is built with exactly our headers and one recipient, or composing fails with a
//! [`ComposeError`]; never a panic, never an injected header.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use contracts::{Priority, ReminderDueData};
use email_delivery::config::{SmtpConfig, SmtpTls};
use email_delivery::mail::Mailer;
use email_delivery::render::{escape_html, one_line, render};
use proptest::prelude::*;

/// Header names a reminder email may carry.
const HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "message-id",
    "auto-submitted",
    "mime-version",
    "date",
    "content-type",
    "content-transfer-encoding",
];

fn mailer() -> Mailer {
    let smtp = SmtpConfig {
        host: "127.0.0.1".into(),
        port: 2525,
        tls: SmtpTls::None,
        from: "Todo Reminders <reminders@localhost>".parse().unwrap(),
        timeout: Duration::from_secs(5),
        hello_name: "email-delivery.test".into(),
        credentials: None,
    };
    Mailer::new(&smtp, None).unwrap()
}

/// Text a user could type or a token could carry, injections included.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        1 => "[ -~]{0,40}",
        1 => prop::sample::select(vec![
            "x\r\nBcc: evil@example.test",
            "x\nSubject: hijacked",
            "\r\n\r\n<html>body</html>",
            "<script>alert(1)</script>",
            "=?utf-8?b?SGk=?=",
            "\u{0}\u{1b}[2J\u{7f}\u{85}\u{2028}\u{feff}",
            "",
            " ",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..400, any::<char>()).prop_map(|(n, c)| c.to_string().repeat(n)),
    ]
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => valid_address(),
        1 => text(),
        1 => prop::sample::select(vec![
            "alice@example.test\r\nBcc: evil@example.test",
            "alice@example.test, bob@example.test",
            "Alice <alice@example.test>",
            "@example.test",
            "alice@",
        ])
        .prop_map(str::to_owned),
    ]
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    (min..=max).prop_map(|s| Utc.timestamp_opt(s, 0).single().unwrap())
}

fn valid_address() -> impl Strategy<Value = String> {
    "[a-z0-9+_-]{1,10}(\\.[a-z0-9+_-]{1,10})?@[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?\\.[a-z]{2,6}"
}

fn reminder() -> impl Strategy<Value = ReminderDueData> {
    reminder_to(address())
}

fn reminder_to(address: impl Strategy<Value = String>) -> impl Strategy<Value = ReminderDueData> {
    (
        (text(), any::<u128>(), address, prop::option::of(text())),
        (text(), text(), prop::sample::select(Priority::ALL.to_vec())),
        (prop::option::of(instant()), instant()),
    )
        .prop_map(
            |(
                (user_id, task, recipient_email, recipient_name),
                (title, description, priority),
                (due_at, remind_at),
            )| ReminderDueData {
                schema_version: 1,
                user_id,
                task_id: uuid::Uuid::from_u128(task),
                recipient_email,
                recipient_name,
                title,
                description,
                priority,
                due_at,
                remind_at,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any reminder renders: a one-line subject of bounded length, the title escaped in HTML.
    #[test]
    fn any_reminder_renders(reminder in reminder()) {
        let rendered = render(&reminder);
        prop_assert!(rendered.subject.chars().count() <= 150);
        prop_assert!(!rendered.subject.chars().any(char::is_control), "{:?}", rendered.subject);
        let title = one_line(&reminder.title);
        prop_assert!(rendered.html.contains(&escape_html(&title)));
        prop_assert!(rendered.text.contains(&title));
    }

    /// Any reminder composes into an email with our headers only and one recipient, or is a
    /// ComposeError.
    #[test]
    fn any_reminder_composes_or_is_refused(event_id in text(), reminder in reminder()) {
        let Ok(composed) = mailer().compose(&event_id, &reminder) else {
            return Ok(());
        };
        prop_assert_eq!(composed.message.envelope().to().len(), 1);
        let raw = composed.message.formatted();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&raw[..end]).unwrap();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                continue; // a folded continuation of the previous header
            }
            let name = line.split(':').next().unwrap_or_default().to_ascii_lowercase();
            prop_assert!(HEADERS.contains(&name.as_str()), "header {:?} in\n{}", line, head);
        }
        let to = head.matches("\r\nTo:").count() + usize::from(head.starts_with("To:"));
        prop_assert_eq!(to, 1);
    }

    /// To a valid address, no text of the reminder makes composing fail: a title or name
    /// full of control characters still reaches its recipient.
    #[test]
    fn reminders_to_valid_addresses_compose(
        event_id in text(),
        reminder in reminder_to(valid_address()),
    ) {
        let composed = mailer().compose(&event_id, &reminder);
        prop_assert!(composed.is_ok(), "{:?} for {:?}", composed.err(), reminder);
    }
}
