//! Sign-up at kmp-admind without a login, over HTTPS with Python's urllib:
//! the open domains, bad JSON, a closed domain, an existing name, the rate
//! limit per browser address (named by a trusted front end) and the ban
//! table, and what the refusals leave behind (nothing).

mod common;

use common::admind::{admind_instance, raw, steps};
use serde_json::{json, Value};

const PW: &str = "Tr0ub4dor-and-3x";

fn signup(address: &str, client: &str) -> Value {
    json!({"m": "POST", "p": "/v1/signup",
        "b": json!({"address": address, "password": PW, "client_ip": client}).to_string()})
}

#[test]
fn sign_up_without_a_login_within_its_limits() {
    let inst = admind_instance(&[
        ("admind", "signup_max = 3"),
        ("admind", "trusted_networks = [\"127.0.0.1\"]"),
    ]);
    inst.ctl_ok(&["domain", "set", "a.example", "--signup", "open"]);
    let r = steps(
        &inst,
        &json!([
            {"m": "GET", "p": "/v1/signup"},
            raw("POST", "/v1/signup", "{", ""),
            signup("new@a.example", "192.0.2.10"),
            signup("NEW@a.example", "192.0.2.10"),
            signup("x@b.example", "192.0.2.10"),
            signup("y@a.example", "192.0.2.10"),
            signup("y@a.example", "192.0.2.11"),
            raw("POST", "/v1/signup", &json!({"address": "z@a.example", "password": PW, "admin": true}).to_string(), ""),
            signup("abuse@a.example", "192.0.2.11"),
        ]),
    );
    assert_eq!(r[0].0, 200, "{:?}", r[0]);
    assert_eq!(
        r[0].1["domains"],
        json!([{"domain": "a.example", "unicode": "a.example", "approval": false}])
    );
    assert_eq!(r[1].0, 400, "{:?}", r[1]);
    assert_eq!(r[2].0, 200, "{:?}", r[2]);
    assert_eq!(r[2].1["pending_approval"], false);
    assert_eq!(r[3].0, 409, "{:?}", r[3]);
    assert_eq!(r[4].0, 404, "a closed domain: {:?}", r[4]);
    assert_eq!(r[5].0, 429, "the fourth try of one address: {:?}", r[5]);
    assert_eq!(r[6].0, 200, "another address: {:?}", r[6]);
    assert_eq!(r[7].0, 400, "{:?}", r[7]);
    assert_eq!(r[8].0, 400, "{:?}", r[8]);
    assert!(
        r[8].1["error"].as_str().unwrap().contains("reserved"),
        "{:?}",
        r[8]
    );
    let shown = inst.ctl_ok(&["user", "show", "new@a.example"]);
    assert!(shown.contains("active"), "{shown}");
    for gone in ["x@b.example", "z@a.example", "abuse@a.example"] {
        assert!(
            !inst.ctl(&["user", "show", gone]).status.success(),
            "{gone}"
        );
    }
    // A banned address is refused before anything else.
    inst.ctl_ok(&["ban", "add", "192.0.2.12"]);
    let r = steps(&inst, &json!([signup("w@a.example", "192.0.2.12")]));
    assert_eq!(r[0].0, 429, "{:?}", r[0]);
    assert!(!inst.ctl(&["user", "show", "w@a.example"]).status.success());
    // The flood was reported to kmp-authd, where it counts toward a ban.
    assert!(
        inst.log("kmp-authd").contains("sign-up flood"),
        "{}",
        inst.log("kmp-authd")
    );
    let log = inst.log("kmp-admind");
    assert!(log.contains("refused signup ip=192.0.2.10"), "{log}");
    assert!(!log.contains(PW));
}
