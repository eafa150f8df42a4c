//! SRS: mail forwarded through an alias to another host leaves with an
//! SRS0 reverse path of ours; a bounce to that address comes back in on the
//! MX port and goes to the original sender; a forged one is refused. A
//! Sieve redirect to another host gets an SRS reverse path as well.
//! The other host is Postfix's smtp-sink.
mod common;

use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::Instance;

/// Sends argv[3] (with \n line ends) from argv[1] to argv[2] on the MX port
/// argv[4]; prints 250 or the refusal.
const PY_SEND: &str = r#"
import smtplib, sys
mail_from, rcpt, body, port = sys.argv[1:5]
s = smtplib.SMTP("127.0.0.1", int(port))
s.ehlo("client.test")
try:
    s.sendmail(mail_from, [rcpt], body.replace("\n", "\r\n").encode())
    print("250")
except smtplib.SMTPRecipientsRefused as e:
    code, text = list(e.recipients.values())[0]
    print(code, text.decode())
s.quit()
"#;

fn send(inst: &Instance, from: &str, to: &str, body: &str) -> String {
    let port = (inst.base + 25).to_string();
    let out = common::python(PY_SEND, &[from, to, body, &port]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn forwarded_mail_gets_an_srs_sender_and_its_bounce_comes_back() {
    let mut inst = Instance::new();
    let sink_port = inst.base + 28;
    let sink_dir = inst.path().join("sink");
    std::fs::create_dir_all(&sink_dir).unwrap();
    let mut args: Vec<String> = Vec::new();
    if nix::unistd::geteuid().is_root() {
        args.extend(["-u".into(), "root".into()]);
    }
    args.extend([
        "-d".into(),
        format!("{}/%H%M%S.", sink_dir.display()),
        format!("127.0.0.1:{sink_port}"),
        "10".into(),
    ]);
    let mut sink = common::tool("/usr/sbin/smtp-sink")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", sink_port)).is_ok()
    })
    .expect("smtp-sink listens");
    inst.append_config(&format!(
        "[remote.routes]\n\"peer.test\" = [\"127.0.0.1:{sink_port}\"]\n\"remote.test\" = [\"127.0.0.1:{sink_port}\"]\n"
    ));
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["alias", "add", "fwd@example.test", "bob@peer.test"]);
    // A user whose Sieve script redirects everything outside.
    let out = inst.ctl_stdin(
        &["user", "add", "s@example.test", "--password-stdin"],
        Some(b"secret\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    inst.spawn("kmp-remote", &[]);
    inst.wait_socket("remote.sock");
    for p in ["kmp-send", "kmp-smtpd"] {
        inst.spawn(p, &[]);
        let pid = inst.path().join(format!("run/{p}.pid"));
        common::wait_until(Duration::from_secs(20), || pid.exists())
            .unwrap_or_else(|_| panic!("{p} did not start: {}", inst.log(p)));
    }
    // smtp-sink makes a file before it writes the message into it: count
    // only the whole ones (each body's last line is there).
    let whole = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&sink_dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
            .filter(|m| {
                ["forward me\n", "bob is gone\n", "redirect me\n"]
                    .iter()
                    .any(|b| m.contains(b))
            })
            .collect();
        v.sort();
        v
    };
    let arrived = |n: usize| -> Vec<String> {
        common::wait_until(Duration::from_secs(30), || whole().len() >= n).unwrap_or_else(|_| {
            panic!(
                "{n} not arrived: {}\n{}",
                inst.log("kmp-send"),
                inst.log("kmp-remote")
            )
        });
        whole()
    };

    let r = send(
        &inst,
        "x@remote.test",
        "fwd@example.test",
        "Subject: fwd\n\nforward me\n",
    );
    assert_eq!(r, "250");
    let msgs = arrived(1);
    let m = &msgs[0];
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
    let msgs = arrived(2);
    let back = msgs.iter().find(|m| m.contains("bob is gone")).unwrap();
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
    let msgs = arrived(3);
    let red = msgs.iter().find(|m| m.contains("redirect me")).unwrap();
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
    let _ = sink.kill();
    let _ = sink.wait();
}
