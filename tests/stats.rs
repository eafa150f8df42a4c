//! `kmpctl stats` against running daemons: messages sent over SMTP with
//! Python's smtplib are counted as accepted by kmp-smtpd, received by
//! kmp-send and delivered by kmp-local, with latencies and fsyncs; a message
//! to an unreachable remote host shows up as deferred in the queue's shape.

mod common;

use std::time::Duration;

use common::{python, set_config, wait_until, Instance};
use serde_json::Value;

const N: u64 = 7;

fn stats(inst: &Instance) -> Value {
    let out = inst.ctl_ok(&["stats", "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn stats_count_accepted_and_delivered_messages_and_show_the_queue() {
    let mut inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", "alice@example.test"]);
    set_config(&inst, "smtpd", "relay_networks = [\"127.0.0.0/8\"]");
    // A route to a port nobody listens on: the remote message is deferred.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    inst.append_config(&format!(
        "[remote]\nconnect_timeout = \"1s\"\n[remote.routes]\n\"far.test\" = [\"127.0.0.1:{dead_port}\"]\n"
    ));
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    inst.spawn("kmp-remote", &[]);
    inst.wait_socket("remote.sock");
    let pid = inst.path().join("run/kmp-send.pid");
    inst.spawn("kmp-send", &[]);
    wait_until(Duration::from_secs(20), || pid.exists()).expect("kmp-send ready");
    inst.spawn("kmp-smtpd", &[]);
    inst.wait_port(25);

    // Before any mail: every daemon is there with zeros.
    wait_until(Duration::from_secs(10), || {
        stats(&inst)["daemons"].as_array().map_or(0, Vec::len) == 5
    })
    .unwrap_or_else(|_| panic!("{}", stats(&inst)));
    assert_eq!(stats(&inst)["totals"]["accepted"], 0);

    let out = python(
        r#"
import smtplib, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
with smtplib.SMTP('127.0.0.1', port, timeout=30) as s:
    for i in range(n):
        s.sendmail('bob@example.org', ['alice@example.test'], f'Subject: {i}\r\n\r\nbody {i}\r\n')
    s.sendmail('bob@example.org', ['carol@far.test'], 'Subject: far\r\n\r\nlater\r\n')
"#,
        &[&(inst.base + 25).to_string(), &N.to_string()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ok = wait_until(Duration::from_secs(30), || {
        let s = stats(&inst);
        s["totals"]["accepted"] == N + 1
            && s["totals"]["delivered"] == N
            && s["totals"]["deferred"].as_u64() >= Some(1)
    });
    let s = stats(&inst);
    assert!(ok.is_ok(), "{s:#}");
    assert_eq!(s["totals"]["received"], N + 1, "{s:#}");
    assert_eq!(s["totals"]["bounced"], 0, "{s:#}");
    assert!(s["totals"]["fsyncs"].as_u64() > Some(N), "{s:#}");
    let daemon = |name: &str| -> Value {
        s["daemons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["program"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing: {s:#}"))
    };
    assert_eq!(daemon("kmp-smtpd")["counters"]["accepted"], N + 1);
    assert_eq!(daemon("kmp-local")["counters"]["delivered"], N);
    assert!(daemon("kmp-remote")["counters"]["deferred"].as_u64() >= Some(1));
    assert_eq!(daemon("kmp-local")["running"], true);
    assert_eq!(s["latency"]["accept"]["count"], N + 1);
    assert_eq!(s["latency"]["delivery"]["count"], N);
    let (mean, p99) = (
        s["latency"]["delivery"]["mean"].as_f64().unwrap(),
        s["latency"]["delivery"]["p99"].as_f64().unwrap(),
    );
    assert!(mean > 0.0 && p99 >= mean && p99 < 60.0, "{s:#}");
    // The deferred message waits in the queue, less than 5 minutes old.
    wait_until(Duration::from_secs(10), || {
        stats(&inst)["queue"]["deferred"]["minutes"]["5"] == 1
    })
    .unwrap_or_else(|_| panic!("{:#}", stats(&inst)));
    assert_eq!(stats(&inst)["queue"]["incoming"]["total"], 0);

    // The table for people.
    let text = inst.ctl_ok(&["stats"]);
    for word in [
        "DAEMON",
        "kmp-smtpd",
        "STAGE",
        "delivery",
        "QUEUE",
        "deferred",
        "1280+",
    ] {
        assert!(text.contains(word), "{word}: {text}");
    }

    // A stopped daemon keeps its last numbers and is shown as stopped.
    inst.kill("kmp-local");
    let s = stats(&inst);
    assert_eq!(daemon_state(&s, "kmp-local"), "false");
    assert_eq!(s["totals"]["delivered"], N);
}

fn daemon_state(s: &Value, name: &str) -> String {
    s["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["program"] == name)
        .map(|d| d["running"].to_string())
        .unwrap_or_default()
}
