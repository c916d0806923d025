//! The broker of the profile in `TODO_BROKER` (redis|kafka|rabbitmq, default redis) starts on a
//! free loopback port and stops completely: every process the harness started for it — for
//! RabbitMQ also the Erlang VM under the server script, its helpers and epmd — is gone after the
//! stop. The end-to-end suites only show that a broker works; this shows it leaves no strays.

use std::time::Duration;

use harness::process::alive;
use harness::{Binaries, Broker, Kafka, RabbitMq, Redis, wait};

/// Waits until none of `pids` runs (zombies count as gone: only their parent can reap them).
async fn all_gone(pids: &[u32]) -> anyhow::Result<()> {
    wait::until(
        "every broker process to exit",
        Duration::from_secs(10),
        || async {
            let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
            if left.is_empty() {
                Ok(Some(()))
            } else {
                Err(anyhow::anyhow!("still running: {left:?}"))
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn broker_starts_on_loopback_and_stops_without_strays() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let logs = root.path().join("logs");
    let pids = match Broker::from_env()? {
        Broker::Redis => {
            let bins = Binaries::locate()?;
            let mut redis = Redis::start(&bins, root.path(), &logs, false).await?;
            assert!(redis.address().starts_with("127.0.0.1:"));
            let pids: Vec<u32> = redis.process_mut().pid().into_iter().collect();
            redis.process_mut().stop();
            pids
        }
        Broker::Kafka => {
            let mut kafka = Kafka::start(root.path(), &logs, false).await?;
            assert!(kafka.address().starts_with("127.0.0.1:"));
            // The topic reader copes with a topic nobody has created.
            assert!(kafka.topic_messages("no-such-topic")?.is_empty());
            let pids: Vec<u32> = kafka.process_mut().pid().into_iter().collect();
            kafka.process_mut().stop();
            pids
        }
        Broker::RabbitMq => {
            let mut rabbit = RabbitMq::start(root.path(), &logs, false).await?;
            assert!(rabbit.connection_string().contains("@127.0.0.1:"));
            let pids = rabbit.pids();
            let vm = rabbit.vm_pid().expect("the Erlang VM's pid");
            assert!(pids.contains(&vm), "{pids:?} lacks the VM {vm}");
            // epmd, the script, the VM and at least its child-setup helper.
            assert!(pids.len() >= 4, "{pids:?}");
            rabbit.stop();
            pids
        }
    };
    assert!(!pids.is_empty());
    all_gone(&pids).await
}
