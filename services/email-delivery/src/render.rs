//! The reminder email's subject and its plain-text and HTML bodies.
//!
//! Plain string building rather than a template engine: one small fixed layout does not pay
//! for another dependency and its compile time. Everything that comes from the event is
//! escaped for HTML, and control characters are removed from what ends up in headers, so a
//! task title cannot inject markup or header lines.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use contracts::ReminderDueData;

/// Longest subject we send, in characters (titles are at most 200; this keeps it readable).
const MAX_SUBJECT_CHARS: usize = 150;

/// The three texts of one reminder email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// `Reminder: <title>`.
    pub subject: String,
    /// The `text/plain` part.
    pub text: String,
    /// The `text/html` part.
    pub html: String,
}

/// Renders the email for `reminder`.
pub fn render(reminder: &ReminderDueData) -> Rendered {
    let title = one_line(&reminder.title);
    let greeting = match reminder.recipient_name.as_deref().map(one_line) {
        Some(name) if !name.is_empty() => format!("Hello {name},"),
        _ => "Hello,".to_owned(),
    };
    let due = reminder
        .due_at
        .map_or_else(|| "no due date".to_owned(), format_time);
    let priority = reminder.priority.as_str();
    let description = reminder.description.trim();

    let mut subject = format!("Reminder: {title}");
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        subject = subject.chars().take(MAX_SUBJECT_CHARS - 1).collect();
        subject.push('…');
    }

    let mut text = format!("{greeting}\n\nthis is your reminder for the task:\n\n  {title}\n\n");
    if !description.is_empty() {
        for line in description.lines() {
            let _ = writeln!(text, "  {line}");
        }
        text.push('\n');
    }
    let _ = write!(
        text,
        "Due:      {due}\nPriority: {priority}\n\n-- \nTodo reminders\n"
    );

    let mut html = String::with_capacity(1024);
    html.push_str("<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>");
    html.push_str(&escape_html(&subject));
    html.push_str("</title></head>\n<body style=\"font-family: sans-serif\">\n");
    let _ = writeln!(html, "<p>{}</p>", escape_html(&greeting));
    html.push_str("<p>This is your reminder for the task:</p>\n");
    let _ = writeln!(html, "<h2>{}</h2>", escape_html(&title));
    if !description.is_empty() {
        let paragraphs = description
            .lines()
            .map(escape_html)
            .collect::<Vec<_>>()
            .join("<br>\n");
        let _ = writeln!(html, "<p>{paragraphs}</p>");
    }
    let _ = writeln!(
        html,
        "<table>\n<tr><th align=\"left\">Due</th><td>{}</td></tr>\n\
         <tr><th align=\"left\">Priority</th><td>{}</td></tr>\n</table>",
        escape_html(&due),
        escape_html(priority),
    );
    html.push_str("<p style=\"color: #888\">Todo reminders</p>\n</body>\n</html>\n");

    Rendered {
        subject,
        text,
        html,
    }
}

/// `Tue, 3 Mar 2026 09:00 UTC`: times are UTC because the event carries no time zone.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.format("%a, %-d %b %Y %H:%M UTC").to_string()
}

/// Escapes the five characters that are special in HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Collapses `text` to one line: control characters (CR, LF, tabs, ...) become spaces and runs
/// of whitespace one space. Used for everything that reaches a header or a heading.
pub fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use contracts::{Priority, SCHEMA_VERSION};
    use uuid::Uuid;

    use super::*;

    fn reminder() -> ReminderDueData {
        ReminderDueData {
            schema_version: SCHEMA_VERSION,
            user_id: "u-1".into(),
            task_id: Uuid::from_u128(7),
            recipient_email: "ada@example.org".into(),
            recipient_name: Some("Ada".into()),
            title: "Water <the> plants & \"herbs\"".into(),
            description: "Basil first\nthen <script>alert('x')</script>".into(),
            priority: Priority::High,
            due_at: Some("2026-03-03T09:00:00Z".parse().unwrap()),
            remind_at: "2026-03-03T08:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn both_parts_carry_the_task() {
        let r = render(&reminder());
        assert_eq!(r.subject, "Reminder: Water <the> plants & \"herbs\"");
        for part in [&r.text, &r.html] {
            assert!(part.contains("Ada"), "{part}");
            assert!(part.contains("Tue, 3 Mar 2026 09:00 UTC"), "{part}");
            assert!(part.contains("high"), "{part}");
            assert!(part.contains("Basil first"), "{part}");
        }
        assert!(r.text.contains("Water <the> plants & \"herbs\""));
        assert!(r.text.contains("then <script>alert('x')</script>"));
    }

    #[test]
    fn html_is_escaped() {
        let r = render(&reminder());
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(
            r.html
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;")
        );
        assert!(
            r.html
                .contains("<h2>Water &lt;the&gt; plants &amp; &quot;herbs&quot;</h2>")
        );
    }

    #[test]
    fn headers_cannot_be_injected_and_optional_fields_have_fallbacks() {
        let r = render(&ReminderDueData {
            title: "Pay rent\r\nBcc: victim@example.org".into(),
            recipient_name: None,
            description: "   ".into(),
            due_at: None,
            ..reminder()
        });
        assert_eq!(r.subject, "Reminder: Pay rent Bcc: victim@example.org");
        assert!(r.text.starts_with("Hello,\n"));
        assert!(r.text.contains("no due date"));
        assert!(!r.html.contains("<br>"));
    }

    #[test]
    fn long_titles_are_shortened_in_the_subject() {
        let r = render(&ReminderDueData {
            title: "x".repeat(200),
            ..reminder()
        });
        assert_eq!(r.subject.chars().count(), MAX_SUBJECT_CHARS);
        assert!(r.subject.ends_with('…'));
        assert!(r.text.contains(&"x".repeat(200)));
    }
}
