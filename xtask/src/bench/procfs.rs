//! What a process costs, read from Linux's `/proc`: CPU time and resident memory, of one
//! process or of a process and everything it started (PostgreSQL serves each connection from
//! a child of its postmaster).

use std::time::Duration;

use anyhow::Context;

/// The kernel's USER_HZ: `/proc` counts CPU time in these ticks, 100 a second on Linux whatever
/// the kernel's own tick rate.
const USER_HZ: u64 = 100;

/// The fields of `/proc/<pid>/stat` after the command name, which is in parentheses and may
/// hold spaces: index 0 is the state (field 3 of the line).
fn stat_fields(pid: u32) -> anyhow::Result<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    // The state is a letter; numbers from there on (0 in its place keeps the indices).
    Ok(after_name
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect())
}

fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 1000 / USER_HZ)
}

fn field(fields: &[u64], i: usize, pid: u32) -> anyhow::Result<u64> {
    fields
        .get(i)
        .copied()
        .with_context(|| format!("short /proc/{pid}/stat line"))
}

/// utime + stime of `pid` (fields 14 and 15 of the stat line).
pub(super) fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let f = stat_fields(pid)?;
    Ok(ticks(field(&f, 11, pid)? + field(&f, 12, pid)?))
}

/// CPU time of `root` and of every live process below it, plus what its children that have
/// exited and been waited for used (cutime + cstime, fields 16 and 17): a connection's
/// PostgreSQL backend that ended during a phase still counts.
pub(super) fn tree_cpu_time(root: u32) -> anyhow::Result<Duration> {
    let f = stat_fields(root)?;
    let mut total = ticks(
        field(&f, 11, root)? + field(&f, 12, root)? + field(&f, 13, root)? + field(&f, 14, root)?,
    );
    for pid in descendants(root)? {
        // A child may exit between the listing and the read: it then counts in its parent's
        // cutime at the next read.
        if let Ok(used) = cpu_time(pid) {
            total += used;
        }
    }
    Ok(total)
}

/// Every live process whose chain of parents reaches `root` (not `root` itself).
fn descendants(root: u32) -> anyhow::Result<Vec<u32>> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(f) = stat_fields(pid)
            && let Some(&ppid) = f.get(1)
        {
            parent_of.push((pid, ppid as u32));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    Ok(found)
}

/// Resident set size of a process, from `/proc/<pid>/status`.
pub(super) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

/// `kib` as MiB with one decimal.
pub(super) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_can_be_timed() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        // Spin until the kernel has counted at least one tick of CPU for us.
        let start = cpu_time(me).unwrap();
        let mut x = 0u64;
        while cpu_time(me).unwrap() == start {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(tree_cpu_time(me).unwrap() >= cpu_time(me).unwrap());
    }

    #[test]
    fn a_child_counts_in_its_parents_tree() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let found = descendants(std::process::id()).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(cpu_time(u32::MAX).is_err());
    }
}
