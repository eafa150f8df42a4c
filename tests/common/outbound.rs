//! An instance that takes mail in on its MX port and sends it on through
//! kmp-remote to peers the test runs (smtp-sink, [`super::sink::Sink`]):
//! the set-up the SRS, DKIM and ARC tests share.

use std::time::Duration;

use super::Instance;

/// Routes each `(domain, port)` to 127.0.0.1:port (`[remote.routes]`).
pub fn route(inst: &Instance, routes: &[(&str, u16)]) {
    let mut text = String::from("[remote.routes]\n");
    for (domain, port) in routes {
        text.push_str(&format!("\"{domain}\" = [\"127.0.0.1:{port}\"]\n"));
    }
    inst.append_config(&text);
}

/// Adds the user `address` with `password` (its domain must exist).
pub fn add_user(inst: &Instance, address: &str, password: &str) {
    let out = inst.ctl_stdin(
        &["user", "add", address, "--password-stdin"],
        Some(format!("{password}\n").as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts kmp-authd, kmp-local, kmp-remote, kmp-send and kmp-smtpd, each
/// once the one before it is ready.
pub fn start_daemons(inst: &mut Instance) {
    for (p, socket) in [
        ("kmp-authd", "authd.sock"),
        ("kmp-local", "local.sock"),
        ("kmp-remote", "remote.sock"),
    ] {
        inst.spawn(p, &[]);
        inst.wait_socket(socket);
    }
    for p in ["kmp-send", "kmp-smtpd"] {
        inst.spawn(p, &[]);
        let pid = inst.path().join(format!("run/{p}.pid"));
        super::wait_until(Duration::from_secs(20), || pid.exists())
            .unwrap_or_else(|_| panic!("{p} did not start: {}", inst.log(p)));
    }
}

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
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

/// Sends `body` (LF line ends) from `from` to `to` on the instance's MX
/// port: "250", or the refusal's code and text.
pub fn send_mx(inst: &Instance, from: &str, to: &str, body: &str) -> String {
    let port = (inst.base + 25).to_string();
    let out = super::python(PY_SEND, &[from, to, body, &port]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The message in a file smtp-sink wrote, without the envelope lines it
/// puts first (X-Client-*, X-Helo-*, X-Mail-*, X-Rcpt-*).
pub fn sink_message(raw: &str) -> String {
    raw.split_inclusive('\n')
        .skip_while(|l| {
            ["X-Client-", "X-Helo-", "X-Mail-", "X-Rcpt-"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect()
}

/// Waits (30 s at most) until smtp-sink holds a whole message that `pick`
/// takes, and returns it.
pub fn wait_sink(inst: &Instance, sink: &super::sink::Sink, pick: impl Fn(&str) -> bool) -> String {
    let found = || sink.messages().into_iter().find(|m| pick(m));
    super::wait_until(Duration::from_secs(30), || found().is_some()).unwrap_or_else(|_| {
        panic!(
            "not arrived: {}\n{}",
            inst.log("kmp-send"),
            inst.log("kmp-remote")
        )
    });
    found().unwrap_or_default()
}
