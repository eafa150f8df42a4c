//! Hostile scripts without a fuzzer: every prefix of every corpus script,
//! and each with one byte replaced by characters that matter to the
//! lexer, must compile or fail with a position inside the script, and
//! what compiles must run over corpus messages without panicking.

use std::fs;
use std::path::Path;

use kmpromail::sieve::{compile, Env, Envelope, Extensions, Message};

struct Clock;

impl Env for Clock {
    fn now(&self) -> (i64, i32) {
        (1_796_441_400, 480)
    }
}

fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sieve")
        .join(dir);
    let mut names: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names.into_iter().map(|p| fs::read(p).unwrap()).collect()
}

fn check(src: &str, messages: &[Vec<u8>]) {
    match compile(src, &Extensions::all()) {
        Err(e) => {
            let lines = src.split('\n').count() as u32;
            assert!(e.line >= 1 && e.line <= lines, "{e} for {src:?}");
            assert!(e.column >= 1, "{e} for {src:?}");
            assert!(!e.message.is_empty());
        }
        Ok(script) => {
            let env = Envelope {
                from: "alice@example.org".into(),
                to: "me@example.com".into(),
                auth: None,
            };
            for m in messages {
                let _ = script.run(&Message::parse(m), &env, &mut Clock);
            }
        }
    }
}

#[test]
fn prefixes_and_mutations_never_panic() {
    let scripts = corpus("scripts");
    let all = corpus("messages");
    let messages: Vec<Vec<u8>> = [1usize, 4, 12, 13, 29]
        .iter()
        .filter_map(|i| all.get(*i).cloned())
        .collect();
    let mut n = 0;
    for raw in &scripts {
        let src = String::from_utf8(raw.clone()).unwrap();
        let cuts: Vec<usize> = (0..=src.len())
            .filter(|i| src.is_char_boundary(*i))
            .collect();
        for &i in &cuts {
            check(&src[..i], &messages[..1]);
            n += 1;
        }
        for &i in cuts.iter().step_by(3) {
            for ins in [
                "\"",
                "{",
                "}",
                "(",
                ")",
                "[",
                "]",
                ";",
                ",",
                ":",
                "#",
                "/*",
                "text:\n",
                "${",
                "\\",
                "中",
                "9999999999",
                "\n.\n",
            ] {
                let mut s = src[..i].to_string();
                s.push_str(ins);
                s.push_str(&src[i..]);
                check(&s, &messages);
                n += 1;
            }
        }
    }
    assert!(n > 10_000, "{n} variants");
}

#[test]
fn deep_and_large_inputs_are_refused_cleanly() {
    let deep = "not ".repeat(10_000) + "true";
    let src = format!("if {deep} {{ keep; }}");
    assert!(compile(&src, &Extensions::all()).is_err());
    let lists = "anyof(".repeat(5_000);
    assert!(compile(&format!("if {lists}"), &Extensions::all()).is_err());
    let big = "keep;".repeat(300_000);
    let e = compile(&big, &Extensions::all()).unwrap_err();
    assert!(e.message.contains("too large"), "{e}");
    let many_stars = format!(
        "require \"fileinto\"; if header :matches \"subject\" \"{}x\" {{ keep; }}",
        "*a".repeat(500)
    );
    let s = compile(&many_stars, &Extensions::all()).unwrap();
    let subject = "a".repeat(20_000);
    let msg = format!("Subject: {subject}\r\n\r\n");
    let env = Envelope::default();
    let o = s
        .run(&Message::parse(msg.as_bytes()), &env, &mut Clock)
        .unwrap();
    assert_eq!(o.actions.len(), 1);
}
