//! Module backends a previous `plinth up` on the same data directory left running.
//!
//! A platform stopped by SIGKILL (or a crash) cannot stop its children: they live on, orphaned,
//! serving with a key the next start rotates, beside the backends it starts again. Each backend
//! writes its output to `{data_dir}/logs/{module}.log`, and every process it starts inherits
//! that output: so whatever runs with its stdout there is a leftover of this data directory,
//! and is killed with its process group before anything starts again. Linux only (it reads
//! `/proc`); elsewhere nothing is reaped.

use std::path::Path;

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// Kills every process whose standard output is a log in `log_dir` (this process aside) and
/// its process group; returns their ids.
pub fn reap(log_dir: &Path) -> Vec<u32> {
    let Ok(log_dir) = log_dir.canonicalize() else {
        return Vec::new(); // no logs yet: nothing ever ran here
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut reaped = Vec::new();
    for entry in entries.flatten() {
        let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if id == me {
            continue;
        }
        let Ok(out) = std::fs::read_link(entry.path().join("fd/1")) else {
            continue; // gone, or not ours to read
        };
        if !out.starts_with(&log_dir) {
            continue;
        }
        let Some(pid) = i32::try_from(id).ok().and_then(Pid::from_raw) else {
            continue;
        };
        if let Some(group) = process_group(&entry.path()) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = kill_process(pid, Signal::KILL);
        reaped.push(id);
    }
    reaped
}

/// The process group of `/proc/{pid}`: the fifth field of its `stat`, after the command's
/// name in parentheses (which may hold spaces).
fn process_group(proc_dir: &Path) -> Option<Pid> {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    let (_, fields) = stat.rsplit_once(')')?;
    let group = fields.split_whitespace().nth(2)?.parse::<i32>().ok()?;
    // Never our own group (a backend that did not lead one of its own shares ours).
    let own = rustix::process::getpgrp();
    Pid::from_raw(group).filter(|g| *g != own)
}
