//! The command line: `--help` (with the environment variables) and `--print-subscriptions`.

use clap::Parser;

use middleware::env::ServiceConfig;

use crate::config::Config;

/// todo-dapr notification: consumes task events, keeps one Dapr reminder job per task
/// (`reminder-<task_id>`, scheduled through its own sidecar) and, when a job fires, re-checks
/// the task with the backend and publishes `com.todo.reminder.due.v1` on `task-reminders`.
#[derive(Debug, Parser)]
#[command(name = "notification", version, about, after_long_help = <Config as ServiceConfig>::env_help())]
pub struct Cli {
    /// Print the declarative Dapr Subscription manifests (the same table `/dapr/subscribe`
    /// serves) and exit; e.g. `> dapr/subscriptions/notification.yaml`.
    #[arg(long)]
    pub print_subscriptions: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_is_well_formed_and_help_lists_the_environment() {
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("--print-subscriptions"), "{help}");
        assert!(help.contains("NOTIFICATION_PORT"), "{help}");
        assert!(help.contains("BACKEND_APP_ID"), "{help}");
        let err = Cli::try_parse_from(["notification", "--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn parses_flags() {
        assert!(
            !Cli::try_parse_from(["notification"])
                .unwrap()
                .print_subscriptions
        );
        let cli = Cli::try_parse_from(["notification", "--print-subscriptions"]).unwrap();
        assert!(cli.print_subscriptions);
        assert!(Cli::try_parse_from(["notification", "--nope"]).is_err());
    }
}
