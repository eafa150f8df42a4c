//! SRS: mail forwarded through an alias to another host leaves with an
//! SRS0 reverse path of ours; a bounce to that address comes back in on the
//! MX port and goes to the original sender; a forged one is refused. A
//! Sieve redirect to another host gets an SRS reverse path as well.
//! The other host is Postfix's smtp-sink.
mod common;

use common::outbound::{add_user, route, send_mx as send, start_daemons, wait_sink};
use common::sink::Sink;
use common::Instance;

#[test]
fn forwarded_mail_gets_an_srs_sender_and_its_bounce_comes_back() {
    let mut inst = Instance::new();
    let sink_port = inst.base + 28;
    let sink = Sink::start(&inst.path().join("sink"), sink_port, &[]);
    route(
        &inst,
        &[("peer.test", sink_port), ("remote.test", sink_port)],
    );
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["alias", "add", "fwd@example.test", "bob@peer.test"]);
    // A user whose Sieve script redirects everything outside.
    add_user(&inst, "s@example.test", "secret");
    let script = inst.path().join("redirect.sieve");
    std::fs::write(&script, "redirect \"carol@peer.test\";\n").unwrap();
    inst.ctl_ok(&[
        "sieve",
        "put",
        "s@example.test",
        "out",
        script.to_str().unwrap(),
        "--activate",
    ]);
    start_daemons(&mut inst);
    let arrived = |body: &str| wait_sink(&inst, &sink, |m| m.contains(body));

    let r = send(
        &inst,
        "x@remote.test",
        "fwd@example.test",
        "Subject: fwd\n\nforward me\n",
    );
    assert_eq!(r, "250");
    let m = &arrived("forward me\n");
    let mail = m
        .lines()
        .find_map(|l| l.strip_prefix("X-Mail-Args: <"))
        .unwrap_or_else(|| panic!("{m}"));
    let srs = mail.split('>').next().unwrap().to_string();
    assert!(
        srs.starts_with("SRS0=") && srs.ends_with("=remote.test=x@mx.example.test"),
        "{m}"
    );
    assert!(m.contains("X-Rcpt-Args: <bob@peer.test>"), "{m}");
    assert!(inst
        .log("kmp-send")
        .contains(&format!("from=<x@remote.test>, srs=<{srs}>")));

    // The bounce of the forward comes back to us and goes to x@remote.test.
    let bounce = "Subject: Undelivered Mail\n\nbob is gone\n";
    assert_eq!(send(&inst, "", &srs, bounce), "250");
    let back = &arrived("bob is gone\n");
    assert!(back.contains("X-Rcpt-Args: <x@remote.test>"), "{back}");
    assert!(back.contains("X-Mail-Args: <>"), "{back}");

    // A Sieve redirect leaves with an SRS reverse path too.
    let r = send(
        &inst,
        "y@remote.test",
        "s@example.test",
        "Subject: redirect\n\nredirect me\n",
    );
    assert_eq!(r, "250");
    let red = &arrived("redirect me\n");
    assert!(red.contains("X-Rcpt-Args: <carol@peer.test>"), "{red}");
    let mail = red
        .lines()
        .find_map(|l| l.strip_prefix("X-Mail-Args: <"))
        .unwrap();
    assert!(
        mail.starts_with("SRS0=") && mail.contains("=remote.test=y@mx.example.test>"),
        "{red}"
    );

    // Forged (another hash) and garbled SRS addresses are refused.
    let forged = srs.replacen("SRS0=", "SRS0=A", 1);
    let mut parts: Vec<&str> = srs.splitn(3, '=').collect();
    parts[1] = if parts[1] == "AAAA" { "BBBB" } else { "AAAA" };
    let forged2 = parts.join("=");
    for bad in [forged.as_str(), forged2.as_str(), "SRS0=xx@mx.example.test"] {
        let r = send(&inst, "", bad, bounce);
        assert!(r.starts_with("550"), "{bad}: {r}");
    }
}
