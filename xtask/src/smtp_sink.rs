//! `cargo xtask smtp-sink`: the local stack's mail server.
//!
//! Runs the harness's SMTP sink on a port, prints one line per mail received and writes each
//! mail as `<dir>/<n>.eml`, so a developer can watch reminders arrive (`cargo xtask up` starts
//! it as a child process and prints where its log is).

#![allow(clippy::print_stdout)] // The received-mail lines are the command's output.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use harness::SmtpSink;

/// Options of `cargo xtask smtp-sink`.
#[derive(Debug, clap::Args)]
pub(crate) struct SmtpSinkArgs {
    /// Address to listen on (`cluster up` uses the host's end of the link to the node).
    #[arg(long, default_value_t = std::net::Ipv4Addr::LOCALHOST)]
    host: std::net::Ipv4Addr,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 2525)]
    port: u16,
    /// Directory to write received mails into (`<n>.eml`); none: only print them.
    #[arg(long)]
    mail_dir: Option<PathBuf>,
}

pub(crate) fn run(args: &SmtpSinkArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let sink = SmtpSink::start_at(args.host, args.port)
            .await
            .with_context(|| format!("binding {}:{}", args.host, args.port))?;
        println!("SMTP sink listening on {}:{}", args.host, sink.port());
        if let Some(dir) = &args.mail_dir {
            std::fs::create_dir_all(dir)?;
        }
        let mut shown = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = middleware::server::shutdown_signal() => return Ok(()),
            }
            let mails = sink.messages();
            for (n, mail) in mails.iter().enumerate().skip(shown) {
                let subject = mail.header("subject").unwrap_or_default();
                println!("mail {n}: to {} — {subject}", mail.to.join(", "));
                if let Some(dir) = &args.mail_dir {
                    std::fs::write(dir.join(format!("{n}.eml")), &mail.data)?;
                }
            }
            shown = mails.len();
        }
    })
}
