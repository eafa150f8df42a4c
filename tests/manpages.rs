//! Every program, kmpctl verb and file format has its man page, and every man
//! page is clean under `mandoc -T lint` and renders without a word from groff
//! (Debian's `man`), with no quotes nested inside quotes.

use std::path::Path;

use clap::CommandFactory;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn man_pages() -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for s in ["man5", "man7", "man8"] {
        for e in std::fs::read_dir(Path::new(ROOT).join("man").join(s)).unwrap() {
            v.push(e.unwrap().path());
        }
    }
    v.sort();
    v
}

#[test]
fn every_program_has_a_man_page() {
    let cargo = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    let doc: toml::Table = cargo.parse().unwrap();
    let bins = doc["bin"].as_array().unwrap();
    assert!(!bins.is_empty());
    for b in bins {
        let name = b["name"].as_str().unwrap();
        let page = Path::new(ROOT).join("man/man8").join(format!("{name}.8"));
        assert!(page.exists(), "{name} has no man page {}", page.display());
    }
}

#[test]
fn every_kmpctl_verb_is_in_its_man_page() {
    let man = std::fs::read_to_string(Path::new(ROOT).join("man/man8/kmpctl.8")).unwrap();
    let mut missing = Vec::new();
    let cli = kmpromail::ctl::Cli::command();
    for noun in cli.get_subcommands() {
        let verbs: Vec<_> = noun
            .get_subcommands()
            .map(|v| v.get_name().to_string())
            .collect();
        if verbs.is_empty() {
            if !man.contains(&format!(".It Cm {}", noun.get_name())) {
                missing.push(noun.get_name().to_string());
            }
            continue;
        }
        for v in verbs.iter().filter(|v| *v != "help") {
            let entry = format!("Cm {} {v}", noun.get_name());
            let listed =
                man.contains(&entry) || man.contains(&format!("{} {v} Ar", noun.get_name()));
            if !listed {
                missing.push(format!("{} {v}", noun.get_name()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "kmpctl verbs missing from kmpctl(8): {missing:?}"
    );
}

#[test]
fn man_pages_are_lint_clean() {
    let out = run_tool(
        "mandoc",
        "mandoc",
        std::process::Command::new("mandoc")
            .args(["-T", "lint", "-W", "warning"])
            .args(man_pages()),
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.trim().is_empty(), "mandoc -T lint:\n{text}");
}

/// Runs a formatter, or fails naming the package that provides it.
fn run_tool(tool: &str, package: &str, cmd: &mut std::process::Command) -> std::process::Output {
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}): install it with `apt-get install {package}` (or run `make test`, which checks every tool)")
    })
}

/// groff 1.22 read `An` at the start of a `.%T` title as the author macro and
/// dropped the rest of kmp-send(8) ("cannot chop empty macro").
#[test]
fn kmp_send_page_is_not_cut_short_by_groff() {
    let mut bad = Vec::new();
    for page in man_pages() {
        let out = run_tool(
            "groff",
            "groff-base",
            std::process::Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .arg(&page),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !err.trim().is_empty() {
            bad.push(format!("{}: {err}", page.display()));
        }
    }
    assert!(bad.is_empty(), "groff -man -ww:\n{}", bad.join("\n"));
}

/// `man -l`, as a reader on Debian runs it, says nothing on standard error.
#[test]
fn man_pages_render_under_man_without_warnings() {
    let mut bad = Vec::new();
    for page in man_pages() {
        let out = run_tool(
            "man",
            "man-db",
            std::process::Command::new("man")
                .arg("-l")
                .arg(&page)
                .env("MANWIDTH", "80")
                .env("MAN_KEEP_FORMATTING", "0")
                .env_remove("MANPAGER")
                .env("PAGER", "cat"),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !err.trim().is_empty() || out.stdout.len() < 200 {
            bad.push(format!("{}: {err}", page.display()));
        }
    }
    assert!(bad.is_empty(), "man -l:\n{}", bad.join("\n"));
}

/// `.Ql a Ns / Ns Ql b` and `.Pq Ql a , Ql b` nest each quote in the one
/// before (`‘a/‘b’’`): every quote a page opens must close before the next.
#[test]
fn kmpctl_page_does_not_nest_quotes() {
    let mut bad = Vec::new();
    for page in man_pages() {
        for (tool, package, args) in [
            ("mandoc", "mandoc", &["-Tutf8"][..]),
            ("groff", "groff-base", &["-man", "-Tutf8", "-P-c"][..]),
        ] {
            let out = run_tool(
                tool,
                package,
                std::process::Command::new(tool).args(args).arg(&page),
            );
            let text = String::from_utf8_lossy(&out.stdout);
            for (open, close) in [('‘', '’'), ('“', '”')] {
                let mut depth = 0usize;
                for (i, c) in text.char_indices() {
                    if c == open {
                        depth += 1;
                        if depth > 1 {
                            let from = text.floor_char_boundary(i.saturating_sub(60));
                            let to = text.ceil_char_boundary((i + 40).min(text.len()));
                            bad.push(format!("{} ({tool}): {}", page.display(), &text[from..to]));
                        }
                    } else if c == close {
                        depth = depth.saturating_sub(1);
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "nested quotes:\n{}", bad.join("\n"));
}
