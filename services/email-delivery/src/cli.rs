//! The command line: everything is configured through the environment (see `--help`); the
//! only flag prints the declarative subscription, so the committed manifest can be
//! regenerated from the code.

use clap::Parser;

use middleware::env::ServiceConfig;

use crate::config::Config;

/// todo-dapr email-delivery: sends one reminder email per `com.todo.reminder.due.v1` event
/// from the `task-reminders` topic, de-duplicated through the Dapr state store, and publishes
/// `com.todo.reminder.sent.v1` when the mail server has accepted it.
#[derive(Debug, Parser)]
#[command(name = "email-delivery", version, after_long_help = <Config as ServiceConfig>::env_help())]
pub struct Cli {
    /// Print the declarative Dapr `Subscription` manifest for this service and exit.
    #[arg(long)]
    pub print_subscriptions: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["email-delivery", "--print-subscriptions"]).unwrap();
        assert!(cli.print_subscriptions);
        assert!(Cli::try_parse_from(["email-delivery", "--bogus"]).is_err());
    }
}
