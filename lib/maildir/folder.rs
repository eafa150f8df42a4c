//! Folders: Maildir++ names, creation, deletion, renaming, listing and
//! subscriptions.
//!
//! An IMAP folder `A.B` (UTF-8 in this API, `.` the hierarchy delimiter, as in
//! Courier and Dovecot's Maildir++ layout) lives in the directory `ROOT/.A.B`,
//! each component written in modified UTF-7 (RFC 3501 5.1.3), so `邮件.2024`
//! is `ROOT/.&kK5O9g-.2024`. A folder directory is a Maildir with an empty
//! `maildirfolder` file. Parents need no directory of their own: `.A.B` may
//! exist without `.A`, which then lists as `\Noselect` with children.
//!
//! No name can reach outside the Maildir: components may not be empty (so no
//! leading, trailing or double dot, hence no `..`), and may not contain `/`,
//! `\`, NUL or other control characters, nor the IMAP wildcards `%` and `*`;
//! the directory name is at most 200 bytes and 32 levels deep.
//!
//! Subscriptions are kept in `ROOT/subscriptions`, one name a line in its
//! on-disk (modified UTF-7) form, as Dovecot 1 kept them for Maildir++.
//! Dovecot 2 writes a second format, which is read too and kept when the
//! file is rewritten (a move back then finds it as Dovecot left it):
//!
//! ```text
//! V<TAB>2                 header, then an empty line
//! <empty>
//! Work<TAB>2024           one name a line, its levels separated by a TAB,
//! &kK5O9g-                each level in modified UTF-7
//! ```
//!
//! A Maildir from Courier IMAP has `courierimapsubscribed` instead (full
//! names: `INBOX.Sent`); it is read while there is no `subscriptions`, and
//! the first change writes `subscriptions` from it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use super::error::{io_err, Error, Result};
use super::{lock, name, quota, Folder, Maildir};
use crate::proto::utf7;

/// The subscriptions file at the root.
pub const SUBSCRIPTIONS: &str = "subscriptions";
/// Courier IMAP's subscriptions file at the root.
pub const COURIER_SUBSCRIPTIONS: &str = "courierimapsubscribed";
/// The header of Dovecot 2's subscriptions file (an empty line follows).
const DOVECOT_V2: &str = "V\t2";
/// The file that marks a Maildir++ folder.
pub const MAILDIRFOLDER: &str = "maildirfolder";
/// Longest directory name (bytes, encoded, with the leading dot).
pub const MAX_DIR_NAME: usize = 200;
/// Deepest hierarchy.
pub const MAX_DEPTH: usize = 32;

/// RFC 6154 special uses of the folders every user gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    Sent,
    Drafts,
    Trash,
    Junk,
}

impl SpecialUse {
    /// The LIST attribute: `\Sent`, `\Drafts`, `\Trash`, `\Junk`.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
        }
    }
}

/// The folders created for every new user, with their special use.
pub const SPECIAL: [(&str, SpecialUse); 4] = [
    ("Sent", SpecialUse::Sent),
    ("Drafts", SpecialUse::Drafts),
    ("Trash", SpecialUse::Trash),
    ("Junk", SpecialUse::Junk),
];

/// One entry of [`Maildir::list_folders`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderInfo {
    /// The IMAP name, UTF-8 (`INBOX`, `Work.2024`).
    pub name: String,
    /// False for a parent that exists only as part of children's names
    /// (IMAP `\Noselect`/`\NonExistent`).
    pub selectable: bool,
    /// IMAP `\HasChildren` (else `\HasNoChildren`).
    pub has_children: bool,
    pub special_use: Option<SpecialUse>,
    /// Listed in `subscriptions`.
    pub subscribed: bool,
}

/// The directory name (below the root) for an IMAP folder name.
pub fn dir_name(name: &str) -> Result<String> {
    let bad = || Error::BadName(name.chars().take(100).collect());
    if name.is_empty() || name.len() > MAX_DIR_NAME * 4 {
        return Err(bad());
    }
    let mut out = String::with_capacity(name.len() + 8);
    for (i, comp) in name.split('.').enumerate() {
        let comp_ok = !comp.is_empty()
            && !comp
                .chars()
                .any(|c| c.is_control() || matches!(c, '/' | '\\' | '%' | '*'));
        if !comp_ok || i >= MAX_DEPTH {
            return Err(bad());
        }
        out.push('.');
        if i == 0 && comp.eq_ignore_ascii_case("INBOX") {
            out.push_str("INBOX");
        } else {
            out.push_str(&utf7::encode(comp));
        }
    }
    if out.len() > MAX_DIR_NAME || out == ".INBOX" {
        return Err(bad());
    }
    Ok(out)
}

/// The IMAP name of a directory entry, if it is a valid folder name in its
/// one canonical spelling.
pub fn folder_name(dir: &str) -> Option<String> {
    let rest = dir.strip_prefix('.')?;
    let mut out = String::new();
    for (i, comp) in rest.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&utf7::decode(comp).ok()?);
    }
    (dir_name(&out).ok()? == dir).then_some(out)
}

/// Creates `tmp/ new/ cur/` (0700) in `dir`, and `maildirfolder` for a folder.
pub(crate) fn make_dirs(dir: &Path, is_folder: bool) -> Result<()> {
    for sub in ["", "tmp", "new", "cur"] {
        let d = dir.join(sub);
        match DirBuilder::new()
            .recursive(sub.is_empty())
            .mode(0o700)
            .create(&d)
        {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("mkdir", &d, e)),
        }
    }
    if is_folder {
        let marker = dir.join(MAILDIRFOLDER);
        if !marker.exists() {
            super::private_file(&marker)?;
        }
    }
    Ok(())
}

/// Everything a new user needs (see [`Maildir::create`]).
pub(crate) fn create_user(md: &Maildir) -> Result<()> {
    make_dirs(md.root(), false)?;
    for (name, _) in SPECIAL {
        make_dirs(&md.root().join(format!(".{name}")), true)?;
    }
    let subs = md.root().join(SUBSCRIPTIONS);
    if !subs.exists() {
        let mut text = String::from("INBOX\n");
        for (name, _) in SPECIAL {
            text.push_str(name);
            text.push('\n');
        }
        super::write_atomic(&subs, text.as_bytes())?;
    }
    Ok(())
}

impl Maildir {
    /// Creates a folder (IMAP CREATE). Parents are not created: Maildir++
    /// does not need them, and they list as `\Noselect` until created.
    pub fn create_folder(&self, name: &str) -> Result<Folder> {
        let f = self.folder(name)?;
        // A directory without cur/ is a creation cut short: completed here.
        if f.dir == self.root() || f.exists() {
            return Err(Error::Exists(name.to_string()));
        }
        make_dirs(&f.dir, true)?;
        Ok(f)
    }

    /// Deletes a folder and its messages (IMAP DELETE). Its children stay
    /// (RFC 3501 6.3.4: the name then remains as a `\Noselect` parent). The
    /// directory is first renamed into `tmp/`, so it vanishes atomically.
    pub fn delete_folder(&self, name: &str) -> Result<()> {
        let f = self.folder(name)?;
        if f.dir == self.root() {
            return Err(Error::NotAllowed("INBOX cannot be deleted".to_string()));
        }
        if !f.dir.is_dir() {
            return Err(Error::NoFolder(name.to_string()));
        }
        let grave = self.root().join("tmp").join(format!(
            ".deleted{}",
            name::unique(std::time::SystemTime::now(), None)
        ));
        fs::rename(&f.dir, &grave).map_err(io_err("rename", &f.dir))?;
        let (mut bytes, mut count) = (0i64, 0i64);
        for sub in ["new", "cur"] {
            if let Ok(entries) = fs::read_dir(grave.join(sub)) {
                for e in entries.flatten() {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    let size = name::field(name::split(&n).0, 'S')
                        .or_else(|| e.metadata().ok().map(|m| m.len()))
                        .unwrap_or(0);
                    bytes += size as i64;
                    count += 1;
                }
            }
        }
        fs::remove_dir_all(&grave).map_err(io_err("remove", &grave))?;
        quota::record(&f, -bytes, -count);
        Ok(())
    }

    /// Renames a folder and every folder below it (IMAP RENAME), and their
    /// subscriptions. Renaming INBOX moves its messages into the new folder
    /// and leaves INBOX empty (RFC 3501 6.3.5).
    pub fn rename_folder(&self, old: &str, new: &str) -> Result<()> {
        let from = self.folder(old)?;
        let to = self.folder(new)?;
        if to.dir == self.root() {
            return Err(Error::Exists(new.to_string()));
        }
        if from.dir == self.root() {
            return self.rename_inbox(&to);
        }
        let from_dir = dir_name(old)?;
        let to_dir = dir_name(new)?;
        if to_dir == from_dir || to_dir.starts_with(&format!("{from_dir}.")) {
            return Err(Error::NotAllowed(format!(
                "cannot rename {old:?} into itself"
            )));
        }
        let mut moves = Vec::new();
        for e in fs::read_dir(self.root())
            .map_err(io_err("readdir", self.root()))?
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if n == from_dir || n.starts_with(&format!("{from_dir}.")) {
                moves.push((n.clone(), format!("{to_dir}{}", &n[from_dir.len()..])));
            }
        }
        if moves.is_empty() {
            return Err(Error::NoFolder(old.to_string()));
        }
        if let Some((_, t)) = moves.iter().find(|(_, t)| self.root().join(t).exists()) {
            return Err(Error::Exists(
                folder_name(t).unwrap_or_else(|| new.to_string()),
            ));
        }
        for (f, t) in &moves {
            let (fp, tp) = (self.root().join(f), self.root().join(t));
            if fs::symlink_metadata(&tp).is_ok() {
                return Err(Error::Exists(new.to_string()));
            }
            fs::rename(&fp, &tp).map_err(io_err("rename", &fp))?;
        }
        self.edit_subscriptions(|subs| {
            let renamed: Vec<String> = subs
                .iter()
                .filter(|s| *s == old || s.starts_with(&format!("{old}.")))
                .cloned()
                .collect();
            for s in renamed {
                subs.remove(&s);
                subs.insert(format!("{new}{}", &s[old.len()..]));
            }
        })
    }

    fn rename_inbox(&self, to: &Folder) -> Result<()> {
        if to.dir.exists() {
            return Err(Error::Exists(to.name().to_string()));
        }
        make_dirs(&to.dir, true)?;
        for sub in ["new", "cur"] {
            let src = self.root().join(sub);
            for e in fs::read_dir(&src)
                .map_err(io_err("readdir", &src))?
                .flatten()
            {
                let dest = to.dir.join(sub).join(e.file_name());
                fs::rename(e.path(), &dest).map_err(io_err("rename", &dest))?;
            }
        }
        Ok(())
    }

    /// Every folder, INBOX first then by name, with implied parents as
    /// non-selectable entries (IMAP LIST "" "*").
    pub fn list_folders(&self) -> Result<Vec<FolderInfo>> {
        let mut names: BTreeMap<String, bool> = BTreeMap::new();
        for e in fs::read_dir(self.root())
            .map_err(io_err("readdir", self.root()))?
            .flatten()
        {
            let n = e.file_name();
            let Some(n) = n.to_str() else { continue };
            let Some(folder) = folder_name(n) else {
                continue;
            };
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let selectable = e.path().join("cur").is_dir();
            let mut parent = folder.as_str();
            while let Some((p, _)) = parent.rsplit_once('.') {
                names.entry(p.to_string()).or_insert(false);
                parent = p;
            }
            names.insert(folder, selectable);
        }
        names.remove("INBOX");
        let subs = self.subscriptions()?;
        let all: Vec<&String> = names.keys().collect();
        let children = |name: &str| {
            let prefix = format!("{name}.");
            all.iter().any(|n| n.starts_with(&prefix))
        };
        let mut out = vec![FolderInfo {
            name: "INBOX".to_string(),
            selectable: true,
            has_children: children("INBOX"),
            special_use: None,
            subscribed: subs.iter().any(|s| s == "INBOX"),
        }];
        for (name, selectable) in &names {
            out.push(FolderInfo {
                name: name.clone(),
                selectable: *selectable,
                has_children: children(name),
                special_use: SPECIAL.iter().find(|(n, _)| n == name).map(|(_, u)| *u),
                subscribed: subs.contains(name),
            });
        }
        Ok(out)
    }

    /// Adds a name to `subscriptions` (IMAP SUBSCRIBE; the folder need not exist).
    pub fn subscribe(&self, name: &str) -> Result<()> {
        let n = canonical(name)?;
        self.edit_subscriptions(|s| {
            s.insert(n);
        })
    }

    /// Removes a name from `subscriptions` (IMAP UNSUBSCRIBE).
    pub fn unsubscribe(&self, name: &str) -> Result<()> {
        let n = canonical(name)?;
        self.edit_subscriptions(|s| {
            s.remove(&n);
        })
    }

    /// The subscribed names (UTF-8), sorted; unreadable lines are skipped.
    pub fn subscriptions(&self) -> Result<Vec<String>> {
        Ok(self.read_subscriptions()?.into_iter().collect())
    }

    fn read_subscriptions(&self) -> Result<BTreeSet<String>> {
        Ok(self.read_subscriptions_as()?.0)
    }

    /// The subscribed names, and whether the file is in Dovecot 2's format.
    fn read_subscriptions_as(&self) -> Result<(BTreeSet<String>, bool)> {
        let read = |file: &str| -> Result<Option<String>> {
            let path = self.root().join(file);
            match fs::read(&path) {
                Ok(t) => Ok(Some(String::from_utf8_lossy(&t).into_owned())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io("read", &path, e)),
            }
        };
        let (text, courier) = match read(SUBSCRIPTIONS)? {
            Some(t) => (t, false),
            None => (read(COURIER_SUBSCRIPTIONS)?.unwrap_or_default(), true),
        };
        Ok(parse_subscriptions(&text, courier))
    }

    fn edit_subscriptions(&self, edit: impl FnOnce(&mut BTreeSet<String>)) -> Result<()> {
        let _lock = lock::exclusive(&self.root().join("subscriptions.lock"))?;
        let (mut subs, v2) = self.read_subscriptions_as()?;
        edit(&mut subs);
        self.write_subscriptions(&subs, v2)
    }

    /// Writes `subscriptions` (caller holds its lock), in Dovecot 2's
    /// format when `v2`.
    fn write_subscriptions(&self, subs: &BTreeSet<String>, v2: bool) -> Result<()> {
        let mut text = String::new();
        if v2 {
            text.push_str(DOVECOT_V2);
            text.push_str("\n\n");
        }
        for s in subs {
            match dir_name(s) {
                Ok(d) if v2 => text.push_str(&d[1..].replace('.', "\t")),
                Ok(d) => text.push_str(&d[1..]),
                Err(_) => text.push_str("INBOX"),
            }
            text.push('\n');
        }
        super::write_atomic(&self.root().join(SUBSCRIPTIONS), text.as_bytes())
    }

    /// Rewrites `subscriptions` in Dovecot 2's format, the same names (for
    /// a move to Dovecot; see migrate.rs).
    pub fn write_dovecot_subscriptions(&self) -> Result<()> {
        let _lock = lock::exclusive(&self.root().join("subscriptions.lock"))?;
        let (subs, _) = self.read_subscriptions_as()?;
        self.write_subscriptions(&subs, true)
    }
}

/// The names in a subscriptions file of any of the three formats, and
/// whether it is Dovecot 2's; lines that name no valid folder are skipped.
fn parse_subscriptions(text: &str, courier: bool) -> (BTreeSet<String>, bool) {
    let mut lines = text.lines().peekable();
    let v2 = lines.peek() == Some(&DOVECOT_V2);
    if v2 {
        lines.next();
    }
    let names = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let l = if v2 {
                if l.split('\t')
                    .any(|level| level.is_empty() || level.contains('.'))
                {
                    return None;
                }
                l.replace('\t', ".")
            } else if courier {
                // Courier's names are full: INBOX.Sent, or INBOX itself.
                match l.get(..6) {
                    Some(p) if p.eq_ignore_ascii_case("INBOX.") => l[6..].to_string(),
                    _ => l.to_string(),
                }
            } else {
                l.to_string()
            };
            if l.eq_ignore_ascii_case("INBOX") {
                Some("INBOX".to_string())
            } else {
                folder_name(&format!(".{l}"))
            }
        })
        .collect();
    (names, v2)
}

/// A name as subscriptions store it: `INBOX` canonical, others validated.
fn canonical(name: &str) -> Result<String> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok("INBOX".to_string());
    }
    dir_name(name)?;
    Ok(name.to_string())
}

#[cfg(test)]
mod tests;
