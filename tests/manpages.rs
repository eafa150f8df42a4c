//! Every program, kmpctl verb and file format has its man page, and every man
//! page is clean under `mandoc -T lint`.

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
    let Ok(out) = std::process::Command::new("mandoc")
        .args(["-T", "lint", "-W", "warning"])
        .args(man_pages())
        .output()
    else {
        eprintln!("skipped: mandoc is not installed (.ci/run installs it)");
        return;
    };
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.trim().is_empty(), "mandoc -T lint:\n{text}");
}
