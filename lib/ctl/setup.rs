//! `kmpctl setup` (root): the system users and groups, the state, queue, mail
//! and run directories with their owners and modes, and a first configuration.
//! Re-running it changes nothing that is already right. [`layout`] is also
//! what `kmpctl check` compares the file system against.
//!
//! Users and groups (see kmpromail(7)):
//!
//! | user    | runs                           | groups             |
//! |---------|--------------------------------|--------------------|
//! | kmpd    | kmp-smtpd                      | kmpromail, kmpdrop |
//! | kmpq    | kmp-send                       | kmpromail, kmpdrop |
//! | kmpr    | kmp-remote                     | kmpromail          |
//! | kmpauth | kmp-authd                      | kmpromail          |
//! | vmail   | kmp-local, pop3d, imapd, sieved| kmpromail          |
//! | kmpfetch| kmp-fetch                      | kmpromail, kmpdrop |
//! | kmpadm  | kmp-admind                     | kmpromail, kmpauth |
//!
//! `kmpdrop` may write the queue's drop directory (kmp-inject is setgid to it);
//! `kmpromail` may create sockets in the run directory and read the TLS key;
//! `kmpweb` may read the webmail's key (the web server's user joins it).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{Gid, Group, Uid, User};

use super::{CtlError, CtlResult, Ctx};
use crate::config::Config;
use crate::exit;

pub use crate::daemon::DAEMON_GROUP;

/// The group that may read the webmail's key (`webmail.key_file`): add the
/// web server's user to it, or run the CGI as a user of it.
pub const WEBMAIL_GROUP: &str = "kmpweb";

/// (user, extra groups) for each system user.
pub const USERS: &[(&str, &[&str])] = &[
    ("kmpd", &["kmpromail", "kmpdrop"]),
    ("kmpq", &["kmpromail", "kmpdrop"]),
    ("kmpr", &["kmpromail"]),
    ("kmpauth", &["kmpromail"]),
    ("vmail", &["kmpromail"]),
    ("kmpfetch", &["kmpromail", "kmpdrop"]),
    // kmp-admind writes the user database: it is in the database's group.
    ("kmpadm", &["kmpromail", "kmpauth"]),
];

/// A path that must exist with an owner, a group and a mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSpec {
    pub path: PathBuf,
    pub owner: &'static str,
    pub group: &'static str,
    pub mode: u32,
    pub dir: bool,
}

fn spec(path: PathBuf, owner: &'static str, group: &'static str, mode: u32) -> PathSpec {
    PathSpec {
        path,
        owner,
        group,
        mode,
        dir: true,
    }
}

/// Every directory (and key file) the installation needs, with its owner and mode.
pub fn layout(cfg: &Config) -> Vec<PathSpec> {
    let q = cfg.path_of("paths.queue");
    let mut v = vec![
        spec(q.clone(), "kmpq", "kmpdrop", 0o710),
        spec(q.join("incoming"), "kmpq", "kmpdrop", 0o2770),
        spec(q.join("incoming/tmp"), "kmpq", "kmpdrop", 0o2770),
        spec(q.join("incoming/new"), "kmpq", "kmpdrop", 0o2770),
        spec(q.join("incoming/env"), "kmpq", "kmpdrop", 0o2770),
        spec(q.join("incoming/env"), "kmpq", "kmpdrop", 0o2770),
        spec(cfg.path_of("paths.mail"), "vmail", "vmail", 0o700),
        spec(cfg.path_of("paths.db"), "kmpauth", "kmpauth", 0o770),
        spec(cfg.path_of("paths.run"), "root", DAEMON_GROUP, 0o771),
        spec(cfg.path_of("paths.fetch"), "kmpfetch", "kmpfetch", 0o700),
    ];
    // Announcements: kmp-admind writes requests, kmp-local (group vmail)
    // reads and removes them.
    if !cfg.str("paths.announce").is_empty() {
        v.push(spec(
            cfg.path_of("paths.announce"),
            "kmpadm",
            "vmail",
            0o2770,
        ));
    }
    // kmp-fetch's key pair: the private half for it alone, the public
    // half for whoever writes accounts (kmpctl, kmp-admind).
    for (key, owner, mode) in [
        ("fetch.private_key", "kmpfetch", 0o600),
        ("fetch.public_key", "root", 0o644),
    ] {
        if !cfg.str(key).is_empty() {
            v.push(PathSpec {
                path: cfg.path_of(key),
                owner,
                group: if owner == "root" { "root" } else { owner },
                mode,
                dir: false,
            });
        }
    }
    // kmp-inject (sendmail) beside kmpctl: set-group-id kmpdrop, so that
    // cron jobs and local users can write into incoming/ (and nothing else).
    // Mode after owner: chown(2) clears the set-group-id bit.
    if let Some(inject) = installed_inject() {
        v.push(PathSpec {
            path: inject,
            owner: "root",
            group: "kmpdrop",
            mode: 0o2755,
            dir: false,
        });
    }
    // The webmail's key: the web server's user reads it through the group.
    let wkey = cfg.str("webmail.key_file");
    if !wkey.is_empty() {
        v.push(PathSpec {
            path: PathBuf::from(wkey),
            owner: "root",
            group: WEBMAIL_GROUP,
            mode: 0o640,
            dir: false,
        });
    }
    // DKIM signing keys: kmp-remote's alone (`kmpctl dkim` gives it the files).
    let dkim = cfg.str("auth.dkim_keys");
    if !dkim.is_empty() {
        v.push(spec(PathBuf::from(dkim), "kmpr", "kmpr", 0o700));
    }
    // The SRS secret: kmp-send rewrites with it, kmp-authd checks bounces.
    let srs = cfg.str("auth.srs_secret_file");
    if !srs.is_empty() {
        v.push(PathSpec {
            path: PathBuf::from(srs),
            owner: "root",
            group: DAEMON_GROUP,
            mode: 0o640,
            dir: false,
        });
    }
    // The mailing lists' cookie key: kmp-local (vmail) alone signs and checks.
    let lkey = cfg.str("lists.cookie_key_file");
    if !lkey.is_empty() {
        v.push(PathSpec {
            path: PathBuf::from(lkey),
            owner: "vmail",
            group: "vmail",
            mode: 0o600,
            dir: false,
        });
    }
    let key = cfg.str("tls.key");
    if !key.is_empty() {
        v.push(PathSpec {
            path: PathBuf::from(key),
            owner: "root",
            group: DAEMON_GROUP,
            mode: 0o640,
            dir: false,
        });
    }
    v
}

/// The kmp-inject installed in kmpctl's own directory (`make install` puts
/// both in PREFIX/sbin), if there is one.
pub fn installed_inject() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.join("kmp-inject");
    p.is_file().then_some(p)
}

/// What is wrong with the installed paths (empty when all is right).
pub fn problems(cfg: &Config) -> Vec<String> {
    layout(cfg)
        .iter()
        .filter_map(|s| check_path(s).err())
        .collect()
}

fn check_path(s: &PathSpec) -> Result<(), String> {
    let md = std::fs::metadata(&s.path).map_err(|e| format!("{}: {e}", s.path.display()))?;
    if md.is_dir() != s.dir {
        return Err(format!(
            "{}: not a {}",
            s.path.display(),
            if s.dir { "directory" } else { "file" }
        ));
    }
    let (uid, gid) = ids(s.owner, s.group).map_err(|e| e.message)?;
    let mode = md.permissions().mode() & 0o7777;
    if md.uid() != uid.as_raw() || md.gid() != gid.as_raw() || mode != s.mode {
        return Err(format!(
            "{}: owner {}:{} mode {:04o}, should be {}:{} mode {:04o}",
            s.path.display(),
            name_of_uid(md.uid()),
            name_of_gid(md.gid()),
            mode,
            s.owner,
            s.group,
            s.mode
        ));
    }
    Ok(())
}

pub fn run(ctx: &Ctx) -> CtlResult {
    if !crate::sys::privs::is_root() {
        return Err(CtlError::new(
            exit::NOPERM,
            "setup creates system users and must run as root",
        ));
    }
    let path = Config::locate(ctx.config_path.as_deref());
    let mut changed = Vec::new();
    ensure_group(DAEMON_GROUP, &mut changed)?;
    ensure_group("kmpdrop", &mut changed)?;
    ensure_group(WEBMAIL_GROUP, &mut changed)?;
    for (user, groups) in USERS {
        ensure_user(user, groups, &mut changed)?;
    }
    if !path.exists() {
        write_first_config(&path)?;
        changed.push(format!("wrote {}", path.display()));
    }
    let cfg = ctx.config()?;
    let (cert, key) = (cfg.path_of("tls.cert"), cfg.path_of("tls.key"));
    if !cfg.str("tls.cert").is_empty() && !cert.exists() && !key.exists() {
        mkdir_parent(&cert)?;
        super::init::write_self_signed(cfg.str("system.hostname"), &cert, &key)?;
        changed.push(format!("made a self-signed certificate {}", cert.display()));
    }
    let srs = cfg.path_of("auth.srs_secret_file");
    if !cfg.str("auth.srs_secret_file").is_empty() && !srs.exists() {
        super::init::write_webmail_key(&srs)?;
    }
    let wkey = cfg.path_of("webmail.key_file");
    if !cfg.str("webmail.key_file").is_empty() && !wkey.exists() {
        mkdir_parent(&wkey)?;
        super::init::write_webmail_key(&wkey)?;
        changed.push(format!("made the webmail key {}", wkey.display()));
    }
    let (fkey, fpub) = (
        cfg.path_of("fetch.private_key"),
        cfg.path_of("fetch.public_key"),
    );
    if !cfg.str("fetch.private_key").is_empty() && !fkey.exists() {
        super::fetch::make_keys(&fkey, &fpub)?;
        changed.push(format!("made kmp-fetch's key pair {}", fkey.display()));
    }
    let lkey = cfg.path_of("lists.cookie_key_file");
    if !cfg.str("lists.cookie_key_file").is_empty() && !lkey.exists() {
        mkdir_parent(&lkey)?;
        super::init::write_list_key(&lkey)?;
        changed.push(format!("made the mailing lists' key {}", lkey.display()));
    }
    for s in layout(&cfg) {
        fix_path(&s, &mut changed)?;
    }
    if ctx.json {
        println!("{}", serde_json::json!({ "changed": changed }));
    } else if changed.is_empty() {
        println!("nothing to change");
    } else {
        for c in &changed {
            println!("{c}");
        }
    }
    Ok(())
}

fn write_first_config(path: &Path) -> CtlResult {
    let mut cfg = Config::defaults();
    if let Ok(h) = nix::unistd::gethostname() {
        if let Some(h) = h.to_str().filter(|h| !h.is_empty()) {
            let _ = cfg.set("system.hostname", h);
        }
    }
    // The webmail's skins and languages where `make install` put them
    // (under kmpctl's own PREFIX, which may not be the default's).
    if let Some(share) = super::init::webmail_share() {
        let _ = cfg.set(
            "webmail.skins_dir",
            &share.join("skins").display().to_string(),
        );
        let _ = cfg.set(
            "webmail.lang_dir",
            &share.join("lang").display().to_string(),
        );
    }
    mkdir_parent(path)?;
    let text = format!(
        "# Kmpromail configuration, written by `kmpctl setup`.\n# kmpromail.toml.sample and kmpromail.toml(5) describe every key.\n\n{}",
        cfg.to_toml(false)
    );
    std::fs::write(path, text)
        .map_err(|e| CtlError::new(exit::CANTCREAT, format!("{}: {e}", path.display())))
}

fn mkdir_parent(p: &Path) -> CtlResult {
    match p.parent() {
        Some(d) => std::fs::create_dir_all(d)
            .map_err(|e| CtlError::new(exit::CANTCREAT, format!("{}: {e}", d.display()))),
        None => Ok(()),
    }
}

fn fix_path(s: &PathSpec, changed: &mut Vec<String>) -> CtlResult {
    if check_path(s).is_ok() {
        return Ok(());
    }
    let err =
        |e: std::io::Error| CtlError::new(exit::from_io(&e), format!("{}: {e}", s.path.display()));
    if s.dir && !s.path.exists() {
        std::fs::create_dir_all(&s.path).map_err(err)?;
    }
    if !s.path.exists() {
        return Ok(());
    }
    let (uid, gid) = ids(s.owner, s.group)?;
    nix::unistd::chown(&s.path, Some(uid), Some(gid))
        .map_err(|e| CtlError::new(exit::OSERR, format!("{}: chown: {e}", s.path.display())))?;
    std::fs::set_permissions(&s.path, std::fs::Permissions::from_mode(s.mode)).map_err(err)?;
    changed.push(format!(
        "{} {}:{} {:04o}",
        s.path.display(),
        s.owner,
        s.group,
        s.mode
    ));
    Ok(())
}

fn ensure_group(group: &str, changed: &mut Vec<String>) -> CtlResult {
    if Group::from_name(group).ok().flatten().is_some() {
        return Ok(());
    }
    if is_freebsd() {
        sh(&["pw", "groupadd", group])?;
    } else {
        sh(&["groupadd", "--system", group])?;
    }
    changed.push(format!("created group {group}"));
    Ok(())
}

fn ensure_user(user: &str, groups: &[&str], changed: &mut Vec<String>) -> CtlResult {
    if User::from_name(user).ok().flatten().is_none() {
        let nologin = ["/usr/sbin/nologin", "/sbin/nologin"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("/bin/false");
        if is_freebsd() {
            sh(&["pw", "groupadd", user])?;
            sh(&[
                "pw",
                "useradd",
                user,
                "-g",
                user,
                "-d",
                "/nonexistent",
                "-s",
                nologin,
                "-c",
                "Kmpromail",
            ])?;
        } else {
            sh(&[
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                nologin,
                "--comment",
                "Kmpromail",
                user,
            ])?;
        }
        changed.push(format!("created user {user}"));
    }
    for g in groups {
        let Some(gr) = Group::from_name(g).ok().flatten() else {
            continue;
        };
        if gr.mem.iter().any(|m| m == user) {
            continue;
        }
        if is_freebsd() {
            sh(&["pw", "groupmod", g, "-m", user])?;
        } else {
            sh(&["usermod", "--append", "--groups", g, user])?;
        }
        changed.push(format!("added {user} to group {g}"));
    }
    Ok(())
}

fn is_freebsd() -> bool {
    cfg!(target_os = "freebsd")
}

fn sh(argv: &[&str]) -> CtlResult {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| CtlError::new(exit::OSERR, format!("{}: {e}", argv[0])))?;
    if !out.status.success() {
        return Err(CtlError::new(
            exit::OSERR,
            format!(
                "{} failed: {}",
                argv.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

fn ids(owner: &str, group: &str) -> Result<(Uid, Gid), CtlError> {
    let u = User::from_name(owner).ok().flatten().ok_or_else(|| {
        CtlError::new(exit::NOUSER, format!("no user {owner} (run kmpctl setup)"))
    })?;
    let g = Group::from_name(group).ok().flatten().ok_or_else(|| {
        CtlError::new(exit::NOUSER, format!("no group {group} (run kmpctl setup)"))
    })?;
    Ok((u.uid, g.gid))
}

fn name_of_uid(uid: u32) -> String {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

fn name_of_gid(gid: u32) -> String {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| gid.to_string())
}
