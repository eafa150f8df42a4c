//! A user's Sieve scripts on disk, in Dovecot Pigeonhole's layout so that
//! scripts copy over from Dovecot and back:
//!
//! ```text
//! HOME/sieve/NAME.sieve          one file per script
//! HOME/sieve/tmp/                scripts being written
//! HOME/.dovecot.sieve -> sieve/NAME.sieve   the active script (a relative symlink)
//! ```
//!
//! HOME is the user's Maildir (our users' home is their Maildir, as with
//! Dovecot's `mail_location = maildir:~`). `sieve/` does not start with a
//! dot, so no Maildir++ reader takes it for a folder, and `.dovecot.sieve`
//! is a symlink to a file, which folder listings skip.
//!
//! Owns: script names (checked by [`check_name`]), the per-user quota
//! (count and bytes), atomic writes (tmp, fsync, rename, fsync of the
//! directory) and the activation link (a new link renamed over the old one,
//! so a delivery sees the old or the new script, never none). Does not own
//! the language: callers compile with `crate::sieve` before they store.
//!
//! Used by kmp-sieved (as `vmail`), `kmpctl sieve` (as root: new files are
//! given to the owner of HOME) and kmp-local (reading the active script).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;

/// The directory of scripts under HOME.
pub const SCRIPT_DIR: &str = "sieve";
/// The active script's link under HOME, as Pigeonhole names it.
pub const ACTIVE_LINK: &str = ".dovecot.sieve";
/// The extension of a script file.
pub const EXTENSION: &str = ".sieve";
/// The name a regular-file `.dovecot.sieve` is kept under when a script is
/// activated over it (as Pigeonhole does on migration).
pub const ORIGINAL_NAME: &str = "dovecot.orig";
/// Longest script name in bytes: NAME.sieve must fit in a file name (255).
pub const MAX_NAME_BYTES: usize = 200;

/// A user's limits, from `[sieve]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_scripts: usize,
    pub max_script_size: u64,
    pub quota_bytes: u64,
}

impl Limits {
    pub fn from_config(cfg: &Config) -> Limits {
        Limits {
            max_scripts: cfg.usize("sieve.max_scripts"),
            max_script_size: cfg.u64("sieve.max_script_size"),
            quota_bytes: cfg.u64("sieve.quota"),
        }
    }
}

/// What can go wrong. Each maps to one ManageSieve response code.
#[derive(Debug)]
pub enum StoreError {
    /// The name is not allowed; the text says why.
    BadName(&'static str),
    /// No script by that name (NONEXISTENT).
    NotFound,
    /// The new name is taken (ALREADYEXISTS).
    Exists,
    /// The active script cannot be deleted (ACTIVE).
    Active,
    /// Storing it would pass the number of scripts (QUOTA/MAXSCRIPTS).
    TooMany,
    /// The script alone is too large (QUOTA/MAXSIZE).
    TooLarge,
    /// Storing it would pass the bytes of the quota (QUOTA).
    OverQuota,
    /// The file system failed.
    Io(io::Error),
}

impl StoreError {
    /// A temporary failure (a retry may succeed) rather than a refusal.
    pub fn is_temporary(&self) -> bool {
        matches!(self, StoreError::Io(_))
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::BadName(why) => write!(f, "bad script name: {why}"),
            StoreError::NotFound => write!(f, "no such script"),
            StoreError::Exists => write!(f, "a script by that name exists already"),
            StoreError::Active => write!(f, "the script is active: deactivate it first"),
            StoreError::TooMany => write!(f, "too many scripts"),
            StoreError::TooLarge => write!(f, "the script is too large"),
            StoreError::OverQuota => write!(f, "the scripts would pass the quota"),
            StoreError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> StoreError {
        StoreError::Io(e)
    }
}

/// One script in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInfo {
    pub name: String,
    pub size: u64,
    pub active: bool,
}

/// Compiles a script being stored (kmp-sieved's PUTSCRIPT and CHECKSCRIPT,
/// `kmpctl sieve put|check`). An `include` is checked for its name only:
/// what it names is read at delivery (RFC 6609 3.2: a missing script is an
/// error then, unless `:optional`), so scripts can be uploaded in any order
/// and the global ones change under them.
pub fn check_script(
    src: &str,
    ext: &crate::sieve::Extensions,
) -> Result<crate::sieve::Script, crate::sieve::CompileError> {
    struct NamesOnly;
    impl crate::sieve::Loader for NamesOnly {
        fn load(
            &self,
            name: &str,
            _location: crate::sieve::Location,
        ) -> Result<Option<String>, String> {
            check_name(name).map_err(|e| e.to_string())?;
            Ok(Some(String::new()))
        }
    }
    crate::sieve::compile_with(src, ext, Some(&NamesOnly), &crate::sieve::Limits::default())
}

/// Checks a script name (RFC 5804 1.6: no control characters; ours: no
/// `/`, not empty, no leading dot, no `..`, at most [`MAX_NAME_BYTES`]).
pub fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::BadName("empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(StoreError::BadName("too long"));
    }
    if name.contains('/') {
        return Err(StoreError::BadName("contains /"));
    }
    if name.starts_with('.') || name.contains("..") {
        return Err(StoreError::BadName("starts with a dot or contains .."));
    }
    // RFC 5804 1.6: no Cc (U+0000-001F, U+007F-009F), no U+2028/2029.
    if name
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return Err(StoreError::BadName("contains a control character"));
    }
    Ok(())
}

/// One user's scripts.
#[derive(Debug, Clone)]
pub struct Store {
    home: PathBuf,
    limits: Limits,
    /// Give new files and directories to this owner (kmpctl as root).
    owner: Option<(u32, u32)>,
}

impl Store {
    /// The scripts under `home` (the user's Maildir).
    pub fn new(home: &Path, limits: Limits) -> Store {
        Store {
            home: home.to_path_buf(),
            limits,
            owner: None,
        }
    }

    /// Files made from now on are given to the owner of `home` when we run
    /// as root (kmpctl), so kmp-sieved and kmp-local (vmail) can use them.
    pub fn owned_like_home(mut self) -> Store {
        if nix::unistd::geteuid().is_root() {
            if let Ok(m) = fs::metadata(&self.home) {
                self.owner = Some((m.uid(), m.gid()));
            }
        }
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn dir(&self) -> PathBuf {
        self.home.join(SCRIPT_DIR)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}{EXTENSION}"))
    }

    fn link(&self) -> PathBuf {
        self.home.join(ACTIVE_LINK)
    }

    /// The path of the active script, if one is active and exists.
    pub fn active_path(&self) -> Option<PathBuf> {
        let name = self.active().ok().flatten()?;
        Some(self.file(&name))
    }

    /// The name of the active script: the one `.dovecot.sieve` links to,
    /// when that is a script of ours.
    pub fn active(&self) -> Result<Option<String>, StoreError> {
        let target = match fs::read_link(self.link()) {
            Ok(t) => t,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.kind() == io::ErrorKind::InvalidInput =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e.into()),
        };
        let Some(file) = target.file_name().and_then(|f| f.to_str()) else {
            return Ok(None);
        };
        let Some(name) = file.strip_suffix(EXTENSION) else {
            return Ok(None);
        };
        // Only a link into our own directory counts (Pigeonhole writes
        // `sieve/NAME.sieve`; an absolute link to the same place is fine).
        let parent = target.parent().unwrap_or(Path::new(""));
        let ours = parent == Path::new(SCRIPT_DIR) || parent == self.dir();
        if !ours || check_name(name).is_err() || !self.file(name).is_file() {
            return Ok(None);
        }
        Ok(Some(name.to_string()))
    }

    /// Every script, sorted by name.
    pub fn list(&self) -> Result<Vec<ScriptInfo>, StoreError> {
        let active = self.active()?;
        let entries = match fs::read_dir(self.dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e?;
            let Ok(file) = e.file_name().into_string() else {
                continue;
            };
            let Some(name) = file.strip_suffix(EXTENSION) else {
                continue;
            };
            if check_name(name).is_err() {
                continue;
            }
            let m = e.metadata()?;
            if !m.is_file() {
                continue;
            }
            out.push(ScriptInfo {
                active: active.as_deref() == Some(name),
                name: name.to_string(),
                size: m.len(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A script's text.
    pub fn get(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        check_name(name)?;
        match fs::read(self.file(name)) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a script `name` of `size` bytes could be stored now
    /// (HAVESPACE, and the check before PUTSCRIPT).
    pub fn have_space(&self, name: &str, size: u64) -> Result<(), StoreError> {
        check_name(name)?;
        if size > self.limits.max_script_size {
            return Err(StoreError::TooLarge);
        }
        let list = self.list()?;
        let others: Vec<&ScriptInfo> = list.iter().filter(|s| s.name != name).collect();
        if others.len() >= self.limits.max_scripts {
            return Err(StoreError::TooMany);
        }
        let used: u64 = others.iter().map(|s| s.size).sum();
        if used.saturating_add(size) > self.limits.quota_bytes {
            return Err(StoreError::OverQuota);
        }
        Ok(())
    }

    /// Stores `text` as `name`, replacing a script of that name atomically.
    pub fn put(&self, name: &str, text: &[u8]) -> Result<(), StoreError> {
        self.have_space(name, text.len() as u64)?;
        let tmp = self.write_tmp(text)?;
        // A crash before the rename leaves a file in sieve/tmp/, which no
        // listing shows; after it, the new script whole.
        let dest = self.file(name);
        if let Err(e) = fs::rename(&tmp, &dest) {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        crate::sys::fsync_dir(&self.dir())?;
        Ok(())
    }

    /// Deletes a script; the active one is refused (RFC 5804 2.10).
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        check_name(name)?;
        if self.active()?.as_deref() == Some(name) {
            return Err(StoreError::Active);
        }
        match fs::remove_file(self.file(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound),
            Err(e) => return Err(e.into()),
        }
        crate::sys::fsync_dir(&self.dir())?;
        Ok(())
    }

    /// Renames a script; an active one stays active under its new name.
    pub fn rename(&self, old: &str, new: &str) -> Result<(), StoreError> {
        check_name(old)?;
        check_name(new)?;
        let from = self.file(old);
        if !from.is_file() {
            return Err(StoreError::NotFound);
        }
        if old == new {
            return Ok(());
        }
        let to = self.file(new);
        let was_active = self.active()?.as_deref() == Some(old);
        // link(2) then unlink: the new name is never silently overwritten
        // (rename(2) would replace a script made meanwhile).
        match fs::hard_link(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(StoreError::Exists),
            Err(e) => return Err(e.into()),
        }
        if was_active {
            // The link moves first, so a delivery always finds a script.
            self.set_link(new)?;
        }
        fs::remove_file(&from)?;
        crate::sys::fsync_dir(&self.dir())?;
        Ok(())
    }

    /// Makes `name` the active script, or deactivates every script when
    /// `name` is None (RFC 5804 2.8, SETACTIVE "").
    pub fn set_active(&self, name: Option<&str>) -> Result<(), StoreError> {
        let Some(name) = name else {
            match fs::symlink_metadata(self.link()) {
                Ok(m) if m.file_type().is_symlink() => {
                    fs::remove_file(self.link())?;
                    crate::sys::fsync_dir(&self.home)?;
                }
                // A regular file is a script someone put there by hand
                // (Dovecot's old layout): keep it as a script, inactive.
                Ok(_) => self.adopt_original()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            return Ok(());
        };
        check_name(name)?;
        if !self.file(name).is_file() {
            return Err(StoreError::NotFound);
        }
        if let Ok(m) = fs::symlink_metadata(self.link()) {
            if m.is_file() {
                self.adopt_original()?;
            }
        }
        self.set_link(name)
    }

    /// Points `.dovecot.sieve` at `name`: a new link renamed over the old.
    fn set_link(&self, name: &str) -> Result<(), StoreError> {
        let tmp = self.home.join(format!(
            "{ACTIVE_LINK}.tmp.{}.{}",
            std::process::id(),
            unique()
        ));
        let target = Path::new(SCRIPT_DIR).join(format!("{name}{EXTENSION}"));
        std::os::unix::fs::symlink(&target, &tmp)?;
        self.give_away(&tmp, true)?;
        if let Err(e) = fs::rename(&tmp, self.link()) {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        crate::sys::fsync_dir(&self.home)?;
        Ok(())
    }

    /// Moves a regular-file `.dovecot.sieve` into the directory as
    /// `dovecot.orig`, so activating another script loses nothing.
    fn adopt_original(&self) -> Result<(), StoreError> {
        self.ensure_dirs()?;
        let dest = self.file(ORIGINAL_NAME);
        if dest.exists() {
            return Err(StoreError::Exists);
        }
        fs::rename(self.link(), &dest)?;
        crate::sys::fsync_dir(&self.dir())?;
        crate::sys::fsync_dir(&self.home)?;
        Ok(())
    }

    fn ensure_dirs(&self) -> io::Result<()> {
        for d in [self.dir(), self.dir().join("tmp")] {
            match fs::create_dir(&d) {
                Ok(()) => {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(&d, fs::Permissions::from_mode(0o700))?;
                    self.give_away(&d, false)?;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes `text` to a new file in `sieve/tmp/`, synced; returns its path.
    fn write_tmp(&self, text: &[u8]) -> io::Result<PathBuf> {
        if !self.home.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} does not exist (no mail delivered yet)",
                    self.home.display()
                ),
            ));
        }
        self.ensure_dirs()?;
        let tmp = self.dir().join("tmp").join(format!(
            "{}.{}.{}",
            crate::userdb::now(),
            std::process::id(),
            unique()
        ));
        let r = (|| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text)?;
            f.sync_all()?;
            self.give_away(&tmp, false)
        })();
        match r {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn give_away(&self, p: &Path, link: bool) -> io::Result<()> {
        let Some((uid, gid)) = self.owner else {
            return Ok(());
        };
        if link {
            std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        } else {
            std::os::unix::fs::chown(p, Some(uid), Some(gid))
        }
    }
}

/// A number unique within this process, for temporary names.
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests;
