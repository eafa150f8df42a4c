//! `kmpctl stats`: where mail is and where it waits, as `postqueue -p`,
//! `qshape` and `doveadm stats` show it for Postfix and Dovecot.
//!
//! Three parts: each daemon's counters (from its `RUN/PROGRAM.stats` file,
//! written by `lib/stats.rs`; a daemon whose pid is gone is shown as
//! stopped with its last numbers), the latency of each stage summed over the
//! daemons (mean and p99 from the merged histograms), and the queue's shape:
//! messages in `incoming/new/` not yet taken by kmp-send, and kmp-send's
//! active, deferred and held messages (asked over its control socket), each
//! by age in qshape's buckets of minutes.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::output::{print_value, Table};
use super::{CtlResult, Ctx};
use crate::ipc::control::{self, ListEntry, Reply, Request};
use crate::paths::Paths;
use crate::stats::{Counter, Latency, Snapshot, Stage};

/// qshape's default age buckets, in minutes: a message counts in the first
/// bucket whose bound is above its age; the last column is everything older.
const AGES: [u64; 9] = [5, 10, 20, 40, 80, 160, 320, 640, 1280];

/// The daemons, in the order `kmpctl status` lists them.
const DAEMONS: [&str; 7] = [
    "kmp-smtpd",
    "kmp-send",
    "kmp-local",
    "kmp-remote",
    "kmp-pop3d",
    "kmp-imapd",
    "kmp-authd",
];

/// Runs `kmpctl stats`.
pub fn run(ctx: &Ctx) -> CtlResult {
    // Lenient, as `kmpctl queue`: a typo must not hide a running system.
    let cfg = ctx.config_lenient()?;
    let paths = Paths::new(&cfg);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);

    let daemons = read_snapshots(&paths);
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let mut stages: BTreeMap<String, Latency> = BTreeMap::new();
    for (s, _) in &daemons {
        for (k, v) in &s.counters {
            *totals.entry(k.clone()).or_default() += v;
        }
        for (k, l) in &s.latency {
            stages.entry(k.clone()).or_default().merge(l);
        }
    }
    let queue = queue_shape(&paths, now);

    let mut dt = Table::new(&[
        "daemon",
        "pid",
        "state",
        "accepted",
        "received",
        "delivered",
        "deferred",
        "bounced",
        "expired",
        "fsyncs",
    ]);
    let mut djson = Vec::new();
    for (s, running) in &daemons {
        let mut row = vec![
            s.program.clone(),
            s.pid.to_string(),
            if *running { "running" } else { "stopped" }.to_string(),
        ];
        row.extend(
            Counter::ALL
                .iter()
                .map(|c| s.counters.get(c.name()).copied().unwrap_or(0).to_string()),
        );
        dt.push(row);
        let lat: Map<String, Value> = s
            .latency
            .iter()
            .filter(|(_, l)| l.count > 0)
            .map(|(k, l)| (k.clone(), latency_json(l)))
            .collect();
        djson.push(json!({
            "program": s.program,
            "pid": s.pid,
            "running": running,
            "started": s.started,
            "updated": s.updated,
            "counters": s.counters,
            "latency": lat,
        }));
    }

    let mut lt = Table::new(&["stage", "count", "mean", "p99"]);
    let mut ljson = Map::new();
    for stage in Stage::ALL {
        let l = stages.get(stage.name()).cloned().unwrap_or_default();
        lt.push(vec![
            stage.name().to_string(),
            l.count.to_string(),
            l.mean().map(secs).unwrap_or_else(|| "-".into()),
            l.quantile(0.99).map(secs).unwrap_or_else(|| "-".into()),
        ]);
        ljson.insert(stage.name().to_string(), latency_json(&l));
    }

    let mut cols = vec!["queue", "total"];
    let labels: Vec<&'static str> = vec![
        "5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+",
    ];
    cols.extend(labels.iter());
    let mut qt = Table::new(&cols);
    let mut qjson = Map::new();
    let mut unavailable = None;
    for (name, shape) in &queue {
        match shape {
            Ok(ages) => {
                let mut row = vec![name.to_string(), ages.len().to_string()];
                let b = buckets(ages);
                row.extend(b.iter().map(u64::to_string));
                qt.push(row);
                let by_age: Map<String, Value> = labels
                    .iter()
                    .zip(&b)
                    .map(|(l, n)| (l.to_string(), json!(n)))
                    .collect();
                qjson.insert(
                    name.to_string(),
                    json!({"total": ages.len(), "minutes": by_age}),
                );
            }
            Err(e) => {
                unavailable = Some(e.clone());
                qjson.insert(name.to_string(), Value::Null);
            }
        }
    }

    let value = json!({
        "daemons": djson,
        "totals": totals,
        "latency": ljson,
        "queue": qjson,
        "queue_error": unavailable,
    });
    let mut text = String::new();
    if daemons.is_empty() {
        text.push_str("no daemon has published statistics (none running?)\n");
    } else {
        text.push_str(&dt.render());
    }
    text.push('\n');
    text.push_str(&lt.render());
    text.push('\n');
    text.push_str(&qt.render());
    if let Some(e) = unavailable {
        text.push_str(&format!("(queue index not shown: {e})\n"));
    }
    print_value(ctx.json, &value, &text);
    Ok(())
}

/// Every daemon's stats file, with whether its process still runs.
fn read_snapshots(paths: &Paths) -> Vec<(Snapshot, bool)> {
    let mut out = Vec::new();
    for d in DAEMONS {
        let Ok(bytes) = std::fs::read(crate::stats::file(&paths.run, d)) else {
            continue;
        };
        let Ok(s) = serde_json::from_slice::<Snapshot>(&bytes) else {
            continue;
        };
        let running = std::path::Path::new(&format!("/proc/{}", s.pid)).exists()
            && std::fs::read_to_string(paths.pid_file(d))
                .is_ok_and(|p| p.trim() == s.pid.to_string());
        out.push((s, running));
    }
    out
}

/// Ages in seconds of the messages of each queue: `incoming` from the
/// directory, the rest from kmp-send.
fn queue_shape(paths: &Paths, now: u64) -> Vec<(&'static str, Result<Vec<u64>, String>)> {
    let mut incoming = Vec::new();
    if let Ok(rd) = std::fs::read_dir(paths.incoming().join("new")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(us) = crate::stats::arrival_us(&name) {
                incoming.push(now.saturating_sub(us / 1_000_000));
            }
        }
    }
    let mut out: Vec<(&'static str, Result<Vec<u64>, String>)> = vec![("incoming", Ok(incoming))];
    match control::call(&paths.send_socket(), Request::List) {
        Ok(Reply::List { entries }) => {
            let age = |e: &ListEntry| now.saturating_sub(e.arrived);
            let pick = |f: &dyn Fn(&ListEntry) -> bool| -> Vec<u64> {
                entries.iter().filter(|e| f(e)).map(age).collect()
            };
            out.push(("active", Ok(pick(&|e| e.active && !e.held))));
            out.push((
                "deferred",
                Ok(pick(&|e| !e.active && !e.held && e.attempts > 0)),
            ));
            out.push((
                "waiting",
                Ok(pick(&|e| !e.active && !e.held && e.attempts == 0)),
            ));
            out.push(("hold", Ok(pick(&|e| e.held))));
        }
        Ok(_) => {
            for q in ["active", "deferred", "waiting", "hold"] {
                out.push((q, Err("unexpected answer from kmp-send".into())));
            }
        }
        Err(e) => {
            for q in ["active", "deferred", "waiting", "hold"] {
                out.push((q, Err(e.to_string())));
            }
        }
    }
    out
}

/// Counts per qshape bucket.
fn buckets(ages: &[u64]) -> Vec<u64> {
    let mut b = vec![0u64; AGES.len() + 1];
    for &a in ages {
        let m = a / 60;
        let i = AGES.iter().position(|&lim| m < lim).unwrap_or(AGES.len());
        b[i] += 1;
    }
    b
}

fn latency_json(l: &Latency) -> Value {
    json!({
        "count": l.count,
        "mean": l.mean(),
        "p99": l.quantile(0.99),
    })
}

/// Seconds for people: `0.004s`, `1.2s`, `75s`.
fn secs(s: f64) -> String {
    if s < 0.01 {
        format!("{:.4}s", s)
    } else if s < 10.0 {
        format!("{:.3}s", s)
    } else {
        format!("{:.0}s", s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_fall_into_qshape_buckets() {
        assert_eq!(
            buckets(&[0, 299, 300, 1199, 1200, 100_000]),
            vec![2, 1, 1, 1, 0, 0, 0, 0, 0, 1]
        );
    }
}
