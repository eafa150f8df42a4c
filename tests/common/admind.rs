//! kmp-admind in a test instance, driven over HTTPS by Python's urllib.
//!
//! The instance has a system administrator admin@sys.example, the domains
//! a.example (postmaster pm@a.example, plain user u@a.example) and
//! b.example (bob@b.example). Every password is `pw-` and the local part.

use std::time::Duration;

use serde_json::{json, Value};

use super::{set_config, wait_until, Instance};

/// The users made, `(address, password)`.
pub const USERS: &[(&str, &str)] = &[
    ("admin@sys.example", "pw-admin"),
    ("pm@a.example", "pw-pm"),
    ("u@a.example", "pw-u"),
    ("bob@b.example", "pw-bob"),
];

/// An instance with its users, kmp-authd and kmp-admind running;
/// `config` is `(section, line)` set before they start.
pub fn admind_instance(config: &[(&str, &str)]) -> Instance {
    let inst = Instance::new();
    set_config(&inst, "admind", "admins = [\"admin@sys.example\"]");
    for (section, line) in config {
        set_config(&inst, section, line);
    }
    for d in ["sys.example", "a.example", "b.example"] {
        inst.ctl_ok(&["domain", "add", d]);
    }
    for (u, p) in USERS {
        let out = inst.ctl_stdin(
            &["user", "add", u, "--password-stdin"],
            Some(format!("{p}\n").as_bytes()),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    inst.ctl_ok(&["domain", "admin", "add", "a.example", "pm@a.example"]);
    start_admind(inst)
}

/// Starts kmp-authd and kmp-admind on an instance already filled.
pub fn start_admind(mut inst: Instance) -> Instance {
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-admind", &[]);
    wait_until(Duration::from_secs(20), || {
        inst.path().join("run/kmp-admind.pid").exists()
    })
    .unwrap_or_else(|_| panic!("kmp-admind did not start: {}", inst.log("kmp-admind")));
    inst.wait_port(844);
    inst
}

/// The client: reads a JSON list of steps on standard input and prints a
/// JSON list of `[status, body]`. A step is `{"m": METHOD, "p": PATH,
/// "b": BODY-TEXT or null, "t": TOKEN-NAME or "raw:TOKEN" or null,
/// "save": NAME}`; a 200 answer with a token is saved under `save`.
const CLIENT: &str = r#"
import json, ssl, sys, urllib.request, urllib.error
base, cafile = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
tokens, out = {}, []
for s in json.load(sys.stdin):
    data = None if s.get("b") is None else s["b"].encode()
    req = urllib.request.Request(base + s["p"], data=data, method=s["m"])
    if data is not None:
        req.add_header("Content-Type", "application/json")
    t = s.get("t")
    if t:
        tok = t[4:] if t.startswith("raw:") else tokens.get(t, "none")
        req.add_header("Authorization", "Bearer " + tok)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    try:
        body = json.loads(body)
    except Exception:
        body = body.decode("utf-8", "replace")
    if status == 200 and s.get("save") and isinstance(body, dict) and "token" in body:
        tokens[s["save"]] = body["token"]
    if s.get("show_token") and s["show_token"] in tokens:
        body = {"token": tokens[s["show_token"]]}
    out.append([status, body])
print(json.dumps(out))
"#;

/// Runs the steps against the instance's kmp-admind.
pub fn steps(inst: &Instance, steps: &Value) -> Vec<(u16, Value)> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let base = format!("https://127.0.0.1:{}", inst.base + 844);
    let ca = inst.path().join("tls/cert.pem");
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .arg(&base)
        .arg(&ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(steps.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<(u16, Value)> = serde_json::from_slice(&out.stdout).unwrap();
    v
}

/// A login step saving the token as `name`.
pub fn login(user: &str, password: &str, name: &str) -> Value {
    json!({"m": "POST", "p": "/v1/login",
        "b": json!({"user": user, "password": password}).to_string(), "save": name})
}

/// A step with a token and an optional JSON body.
pub fn req(method: &str, path: &str, body: Option<Value>, token: &str) -> Value {
    json!({"m": method, "p": path, "b": body.map(|b| b.to_string()), "t": token})
}

/// A step with a raw (possibly malformed) body.
pub fn raw(method: &str, path: &str, body: &str, token: &str) -> Value {
    json!({"m": method, "p": path, "b": body, "t": token})
}
