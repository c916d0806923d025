//! Fixes we apply to Dapr's dependencies before building the runtime, each for a defect that
//! our tests found and that loses data. Every fix is a small, checked edit of one file in a
//! writable copy of the dependency's module (next to the copy of Dapr's module, outside this
//! repository), which Dapr's module then uses through a `replace` directive. A fix that no longer
//! finds what it edits stops the build, so a version bump cannot silently drop it.
//!
//! The fixes in force are named in [`FIXES`]; their ids go into the build's stamp, so a runtime
//! built before a fix was added is rebuilt rather than reused.

use std::path::Path;

use anyhow::{Context, ensure};

use crate::dapr_runtime::{fetch_module_source, go_command, run_quiet};

/// One edit of one file of a module that Dapr requires.
pub(crate) struct Fix {
    /// Short name, recorded in the build stamp.
    pub(crate) id: &'static str,
    /// The module, as Dapr's go.mod requires it.
    pub(crate) module: &'static str,
    /// The file inside the module.
    pub(crate) file: &'static str,
    /// Rewrites the file's text, or says why it cannot.
    pub(crate) edit: fn(&str) -> anyhow::Result<String>,
}

/// Every fix applied to the runtime we build. All three are in the RabbitMQ pub/sub component
/// of components-contrib 1.18.3 (the one daprd 1.18.2 requires; 1.18.4 is the same there).
///
/// The first two turn a publish that did not reach the broker into a reported success: daprd
/// answers 204, the outbox relay marks the event published, and the event is gone. Our
/// broker-crash scenario on RabbitMQ lost 1 event of 3,622 in one of three runs, at the instant
/// daprd logged the first defect.
///
/// - `rabbitmq-unconfirmed-publish`: with `publisherConfirm: "true"`, a message the broker
///   nacks, or whose channel closes before the confirmation, is logged ("did not receive
///   confirmation of publishing") and then reported as published.
/// - `rabbitmq-cancelled-publish`: a publish whose context ends while the component waits to
///   reconnect or to retry returns no error. The context ends at daprd's outbound timeout
///   (`componentCall`, 5 s, in our resiliency policy), and daprd's resiliency runner, seeing the
///   operation's `nil` and its own deadline at once, answers either.
///
/// With the fixes such a publish fails, daprd answers an error, and the relay publishes the
/// event again (consumers deduplicate a copy the broker did keep).
///
/// - `rabbitmq-serialized-consume`: every subscription of a sidecar shares one AMQP channel, and
///   the component registers a consumer (`basic.consume`, which waits for `consume-ok`) without
///   the lock that its other channel calls hold. After a reconnect, the subscriptions re-declare
///   their queues side by side; the client library matches replies to calls in arrival order
///   only, so one call takes another's reply and fails ("Exception (503) unexpected command
///   received"). When the failed call is the `basic.consume`, the broker has registered the
///   consumer but the client has forgotten it: the broker fills it with `prefetchCount`
///   messages that nobody reads or acknowledges until the channel closes, and the subscription
///   registers another consumer. Our broker-crash scenario found 31 events parked that way (32
///   unacknowledged on a queue with 2 consumers for one subscriber) in 3 runs of 6. Taking the
///   lock around the call serialises it with the others. (Reported upstream as
///   components-contrib issue 4540, open when this was written.)
pub(crate) const FIXES: &[Fix] = &[
    Fix {
        id: "rabbitmq-unconfirmed-publish",
        module: CONTRIB,
        file: RABBITMQ,
        edit: return_unconfirmed_publish_error,
    },
    Fix {
        id: "rabbitmq-cancelled-publish",
        module: CONTRIB,
        file: RABBITMQ,
        edit: return_cancelled_publish_error,
    },
    Fix {
        id: "rabbitmq-serialized-consume",
        module: CONTRIB,
        file: RABBITMQ,
        edit: serialize_consume,
    },
];

const CONTRIB: &str = "github.com/dapr/components-contrib";
const RABBITMQ: &str = "pubsub/rabbitmq/rabbitmq.go";

/// The ids of [`FIXES`], one line, for build stamps.
pub(crate) fn stamp() -> String {
    FIXES.iter().map(|f| f.id).collect::<Vec<_>>().join(",")
}

/// Copies every module a fix edits next to `dapr_src` (Dapr's module copy), applies the fixes,
/// and points Dapr's go.mod at the copies.
pub(crate) fn apply(dapr_src: &Path, cache: &Path) -> anyhow::Result<()> {
    let go_mod = std::fs::read_to_string(dapr_src.join("go.mod"))
        .with_context(|| format!("reading {}", dapr_src.join("go.mod").display()))?;
    let mut modules: Vec<&str> = FIXES.iter().map(|f| f.module).collect();
    modules.dedup();
    std::fs::create_dir_all(cache.join("fixed"))?;
    for module in modules {
        let version = required_version(&go_mod, module)
            .with_context(|| format!("Dapr's go.mod does not require {module}"))?;
        let copy = cache.join("fixed").join(module.replace('/', "_"));
        fetch_module_source(module, version.trim_start_matches('v'), &copy)?;
        for fix in FIXES.iter().filter(|f| f.module == module) {
            let file = copy.join(fix.file);
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let fixed = (fix.edit)(&text)
                .with_context(|| format!("fix {} in {module} {version}", fix.id))?;
            std::fs::write(&file, fixed)?;
        }
        run_quiet(
            go_command()
                .current_dir(dapr_src)
                .args(["mod", "edit"])
                .arg(format!("-replace={module}={}", copy.display())),
        )?;
    }
    Ok(())
}

/// The version `go_mod` requires of `module` (`v1.18.3`), from a `require` block line.
fn required_version<'a>(go_mod: &'a str, module: &str) -> Option<&'a str> {
    go_mod.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let first = words.next()?;
        let (name, version) = if first == "require" {
            (words.next()?, words.next()?)
        } else {
            (first, words.next()?)
        };
        (name == module && version.starts_with('v')).then_some(version)
    })
}

/// In the function that logs the missing confirmation, return the error it built instead of
/// `nil`, so that the caller's retry loop and daprd's answer see the failure.
fn return_unconfirmed_publish_error(text: &str) -> anyhow::Result<String> {
    const LOGGED: &str = "did not receive confirmation of publishing";
    const SWALLOWED: &str = "r.connectionCount, nil";
    const RETURNED: &str = "r.connectionCount, err";
    let at = text
        .find(LOGGED)
        .with_context(|| format!("no \"{LOGGED}\" in the file"))?;
    // The rest of that function: up to the next top-level declaration.
    let end = text[at..]
        .find("\nfunc ")
        .map_or(text.len(), |offset| at + offset);
    let body = &text[at..end];
    ensure!(
        body.matches(SWALLOWED).count() == 1,
        "expected one `{SWALLOWED}` after \"{LOGGED}\" in its function, found {}",
        body.matches(SWALLOWED).count()
    );
    Ok(format!(
        "{}{}{}",
        &text[..at],
        body.replacen(SWALLOWED, RETURNED, 1),
        &text[end..]
    ))
}

/// In the component's `Publish`, a wait cut short by the caller's context returns the
/// context's error instead of `nil`.
fn return_cancelled_publish_error(text: &str) -> anyhow::Result<String> {
    const START: &str = "func (r *rabbitMQ) Publish(";
    const CANCELLED: &str = "case <-ctx.Done():";
    let at = text
        .find(START)
        .with_context(|| format!("no `{START}` in the file"))?;
    let end = text[at + 1..]
        .find("\nfunc ")
        .map_or(text.len(), |offset| at + 1 + offset);
    let mut body = String::with_capacity(end - at);
    let mut rest = &text[at..end];
    let mut fixed = 0;
    while let Some(i) = rest.find(CANCELLED) {
        let after = i + CANCELLED.len();
        body.push_str(&rest[..after]);
        rest = &rest[after..];
        let indent = rest.len() - rest.trim_start().len();
        if rest[indent..].starts_with("return nil") {
            body.push_str(&rest[..indent]);
            body.push_str("return ctx.Err()");
            rest = &rest[indent + "return nil".len()..];
            fixed += 1;
        }
    }
    body.push_str(rest);
    ensure!(
        fixed > 0,
        "no `{CANCELLED}` followed by `return nil` in `Publish`"
    );
    Ok(format!("{}{body}{}", &text[..at], &text[end..]))
}

/// Wraps the one `channel.Consume(...)` call (a statement over several lines, closed by a `)`
/// line at its own indentation) in `r.channelMutex.Lock()` / `Unlock()`.
fn serialize_consume(text: &str) -> anyhow::Result<String> {
    const CALL: &str = "msgs, err = channel.Consume(";
    const LOCK: &str = "r.channelMutex.Lock()";
    ensure!(
        text.matches(CALL).count() == 1,
        "expected one `{CALL}`, found {}",
        text.matches(CALL).count()
    );
    let at = text.find(CALL).context("no consume call")?;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let indent = &text[line_start..at];
    ensure!(
        indent.chars().all(char::is_whitespace),
        "`{CALL}` does not start its line"
    );
    let before = text[..line_start].trim_end();
    ensure!(
        !before.ends_with(LOCK),
        "the consume call already holds the channel lock"
    );
    let close = format!("\n{indent})\n");
    let end = text[at..]
        .find(&close)
        .map(|offset| at + offset + close.len())
        .with_context(|| format!("no closing `)` line for `{CALL}`"))?;
    Ok(format!(
        "{}{indent}{LOCK}\n{}{indent}r.channelMutex.Unlock()\n{}",
        &text[..line_start],
        &text[line_start..end],
        &text[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Our own stand-in with the shape the fix looks for, not the component's source.
    const SHAPE: &str = concat!(
        "package p\n\n",
        "func send(r *r) (c, int, error) {\n",
        "\tif !ok {\n",
        "\t\terr = errors.New(\"did not receive confirmation of publishing\")\n",
        "\t}\n\n",
        "\treturn r.channel, r.connectionCount, nil\n",
        "}\n\n",
        "func other(r *r) (c, int, error) {\n",
        "\treturn r.channel, r.connectionCount, nil\n",
        "}\n",
    );

    #[test]
    fn the_unconfirmed_publish_returns_its_error_and_nothing_else_changes() {
        let fixed = return_unconfirmed_publish_error(SHAPE).unwrap();
        assert_eq!(fixed.matches("r.connectionCount, err").count(), 1);
        // `other` keeps its `nil`.
        assert_eq!(fixed.matches("r.connectionCount, nil").count(), 1);
        assert!(fixed.find("r.connectionCount, err") < fixed.find("func other"));
        assert_eq!(fixed.len(), SHAPE.len());
    }

    #[test]
    fn a_file_without_the_defect_stops_the_build() {
        let already = SHAPE.replacen("r.connectionCount, nil", "r.connectionCount, err", 1);
        assert!(return_unconfirmed_publish_error(&already).is_err());
        assert!(return_unconfirmed_publish_error("package p\n").is_err());
    }

    // Our own stand-in for the retry loop's shape.
    const LOOP: &str = concat!(
        "package p\n\n",
        "func (r *rabbitMQ) Publish(ctx context.Context) error {\n",
        "\tfor {\n",
        "\t\tselect {\n",
        "\t\tcase <-time.After(d):\n",
        "\t\tcase <-ctx.Done():\n",
        "\t\t\treturn nil\n",
        "\t\t}\n",
        "\t\tselect {\n",
        "\t\tcase <-ctx.Done():\n",
        "\t\t\treturn nil\n",
        "\t\t}\n",
        "\t}\n",
        "}\n\n",
        "func (r *rabbitMQ) Subscribe(ctx context.Context) error {\n",
        "\tselect {\n",
        "\tcase <-ctx.Done():\n",
        "\t\treturn nil\n",
        "\t}\n",
        "}\n",
    );

    #[test]
    fn a_cancelled_publish_returns_the_context_error_and_subscribe_is_left_alone() {
        let fixed = return_cancelled_publish_error(LOOP).unwrap();
        let publish_end = fixed.find("func (r *rabbitMQ) Subscribe").unwrap();
        assert_eq!(fixed[..publish_end].matches("return ctx.Err()").count(), 2);
        assert!(!fixed[..publish_end].contains("return nil"));
        assert!(fixed[publish_end..].contains("return nil"));
        assert!(return_cancelled_publish_error(&fixed).is_err());
    }

    // Our own stand-in for a consume call spread over lines.
    const CONSUME: &str = concat!(
        "package p\n\n",
        "func (r *rabbitMQ) loop() {\n",
        "\tfor {\n",
        "\t\tmsgs, err = channel.Consume(\n",
        "\t\t\tq.Name,\n",
        "\t\t\tnil,\n",
        "\t\t)\n",
        "\t\tif err != nil {\n",
        "\t\t\tbreak\n",
        "\t\t}\n",
        "\t}\n",
        "}\n",
    );

    #[test]
    fn the_consume_call_runs_under_the_channel_lock() {
        let fixed = serialize_consume(CONSUME).unwrap();
        let lock = fixed.find("\t\tr.channelMutex.Lock()\n").unwrap();
        let call = fixed.find("msgs, err = channel.Consume(").unwrap();
        let close = fixed.find("\t\t)\n").unwrap();
        let unlock = fixed.find("\t\tr.channelMutex.Unlock()\n").unwrap();
        let check = fixed.find("if err != nil").unwrap();
        assert!(lock < call && call < close && close < unlock && unlock < check);
        // Applying it twice, or to a file without the call, stops the build.
        assert!(serialize_consume(&fixed).is_err());
        assert!(serialize_consume("package p\n").is_err());
    }

    #[test]
    fn finds_the_required_version_in_a_block_or_a_single_line() {
        let go_mod = "module m\n\nrequire (\n\tgithub.com/a/b v1.2.3\n\tgithub.com/dapr/components-contrib v1.18.3\n)\n\nrequire github.com/c/d v0.1.0 // indirect\n";
        assert_eq!(
            required_version(go_mod, "github.com/dapr/components-contrib"),
            Some("v1.18.3")
        );
        assert_eq!(required_version(go_mod, "github.com/c/d"), Some("v0.1.0"));
        assert_eq!(required_version(go_mod, "github.com/x/y"), None);
    }
}
