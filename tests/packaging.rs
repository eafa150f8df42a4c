//! What a packager and an administrator install: `make install` and
//! `make uninstall` under DESTDIR, the systemd units, the FreeBSD rc.d script.
mod common;

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn rc_d_script_is_shellcheck_and_sh_clean() {
    let script = Path::new(ROOT).join("rc.d/kmpromail");
    let (ok, text) = run(Command::new("sh").arg("-n").arg(&script));
    assert!(ok, "sh -n: {text}");
    if Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped shellcheck: not installed (.ci/run installs it)");
        return;
    }
    let (ok, text) = run(Command::new("shellcheck").args(["-s", "sh"]).arg(&script));
    assert!(ok, "shellcheck: {text}");
}

#[test]
fn systemd_units_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bins = common::bin_dir();
    let mut units = Vec::new();
    for e in std::fs::read_dir(Path::new(ROOT).join("systemd")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if !(name.ends_with(".service") || name.ends_with(".target")) {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        if let Some(line) = text.lines().find(|l| l.starts_with("ExecStart=")) {
            let prog = line
                .split_whitespace()
                .next()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap();
            if !bins.join(prog).exists() {
                eprintln!("{name}: {prog} is not built yet; verifying the others");
                continue;
            }
            for hardening in [
                "NoNewPrivileges=yes",
                "ProtectSystem=strict",
                "PrivateTmp=yes",
                "User=",
                "ReadWritePaths=",
            ] {
                assert!(text.contains(hardening), "{name} lacks {hardening}");
            }
        }
        let text = text.replace("/usr/local/libexec/kmpromail", bins.to_str().unwrap());
        let out = dir.path().join(&name);
        std::fs::write(&out, text).unwrap();
        units.push(out);
    }
    assert!(units.len() >= 2);
    let (ok, text) = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units));
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

#[test]
fn make_install_and_uninstall_under_destdir() {
    let dest = tempfile::tempdir().unwrap();
    let rel = common::bin_dir();
    let make = |target: &str| {
        run(Command::new("make")
            .current_dir(ROOT)
            .arg(target)
            .arg(format!("DESTDIR={}", dest.path().display()))
            .arg("PREFIX=/usr/local")
            .arg(format!("REL={}", rel.display())))
    };
    let (ok, text) = make("install");
    assert!(ok, "make install: {text}");
    let d = dest.path();
    for f in [
        "usr/local/sbin/kmpctl",
        "usr/local/libexec/kmpromail/kmp-authd",
        "usr/local/share/man/man8/kmpctl.8",
        "usr/local/share/man/man5/kmpromail.toml.5",
        "usr/local/share/man/man7/kmpromail.7",
        "etc/kmpromail/kmpromail.toml.sample",
        "usr/local/lib/systemd/system/kmpromail.target",
        "usr/local/lib/systemd/system/kmp-smtpd.service",
        "usr/local/lib/tmpfiles.d/kmpromail.conf",
    ] {
        assert!(d.join(f).exists(), "make install did not install {f}");
    }
    assert!(
        !d.join("etc/kmpromail/kmpromail.toml").exists(),
        "install must not write a live config"
    );
    if rel.join("kmp-inject").exists() {
        assert_eq!(
            std::fs::read_link(d.join("usr/local/sbin/sendmail")).unwrap(),
            Path::new("kmp-inject")
        );
        assert!(d.join("usr/local/bin/mailq").exists());
        // sendmail for ordinary users: set-group-id kmpdrop when the group
        // exists (and the installer may give it), never set-group-id another.
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(d.join("usr/local/sbin/kmp-inject")).unwrap();
        match nix::unistd::Group::from_name("kmpdrop").ok().flatten() {
            Some(g) if nix::unistd::Uid::effective().is_root() => {
                assert_eq!(md.mode() & 0o7777, 0o2755);
                assert_eq!(md.gid(), g.gid.as_raw());
            }
            _ => assert_eq!(md.mode() & 0o7777, 0o755, "{text}"),
        }
    }
    // Installed programs are stripped: no debug info, far smaller than the
    // build's (debug builds carry tens of MB of it).
    let installed = [
        ("usr/local/sbin/kmpctl", "kmpctl"),
        ("usr/local/libexec/kmpromail/kmp-smtpd", "kmp-smtpd"),
        ("usr/local/sbin/kmp-inject", "kmp-inject"),
    ];
    for (path, name) in installed {
        if !rel.join(name).exists() {
            continue;
        }
        let built = std::fs::metadata(rel.join(name)).unwrap().len();
        let inst = std::fs::metadata(d.join(path)).unwrap().len();
        assert!(
            inst < built,
            "{path}: {inst} octets, built {built}: not stripped"
        );
        if Command::new("readelf").arg("--version").output().is_err() {
            eprintln!("readelf is not installed (binutils): sizes checked only");
            continue;
        }
        let (ok, sections) = run(Command::new("readelf").arg("-S").arg(d.join(path)));
        assert!(ok, "readelf -S {path}: {sections}");
        for s in [".debug_info", ".debug_line", ".symtab"] {
            assert!(!sections.contains(s), "{path} still has {s}");
        }
    }
    // A live configuration is never touched by a second install.
    std::fs::write(d.join("etc/kmpromail/kmpromail.toml"), "# mine\n").unwrap();
    assert!(make("install").0);
    assert_eq!(
        std::fs::read_to_string(d.join("etc/kmpromail/kmpromail.toml")).unwrap(),
        "# mine\n"
    );
    let (ok, text) = make("uninstall");
    assert!(ok, "make uninstall: {text}");
    assert!(!d.join("usr/local/sbin/kmpctl").exists());
    assert!(!d.join("usr/local/libexec/kmpromail/kmp-authd").exists());
    assert!(!d.join("usr/local/share/man/man8/kmpctl.8").exists());
    assert!(
        d.join("etc/kmpromail/kmpromail.toml").exists(),
        "uninstall removed the live config"
    );
}
