//! Dropping privileges, in one place.
//!
//! A daemon started as root binds its ports and reads its keys, then calls
//! [`drop_to`] with the user its `[privileges]` key names: the supplementary
//! groups, the group and the user are set, in that order, and checked. Started
//! as anyone else, or with an empty user name, nothing changes: that is how
//! tests, CI and the demo run every program as one user.

use nix::unistd::{self, Gid, Group, Uid, User};

/// Why privileges could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    #[error("no such user {0:?} (run `kmpctl setup` to create the system users)")]
    NoUser(String),
    #[error("no such group {0:?}")]
    NoGroup(String),
    #[error("cannot change to user {user}: {err}")]
    Failed { user: String, err: nix::Error },
    #[error("still able to regain root after dropping to {0}")]
    NotDropped(String),
}

/// What [`drop_to`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Not root, or no user named: nothing changed.
    Unchanged,
    /// Now running as this user (uid, gid).
    To { user: String, uid: u32, gid: u32 },
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    Uid::effective().is_root()
}

/// Becomes `user` (with its primary group and supplementary groups, plus
/// `extra_group` when given) if running as root and `user` is not empty.
pub fn drop_to(user: &str, extra_group: Option<&str>) -> Result<Dropped, PrivError> {
    if user.is_empty() || !is_root() {
        return Ok(Dropped::Unchanged);
    }
    let pw = User::from_name(user)
        .ok()
        .flatten()
        .ok_or_else(|| PrivError::NoUser(user.to_string()))?;
    let failed = |err| PrivError::Failed {
        user: user.to_string(),
        err,
    };
    let cname = std::ffi::CString::new(user).map_err(|_| PrivError::NoUser(user.to_string()))?;
    unistd::initgroups(&cname, pw.gid).map_err(failed)?;
    if let Some(g) = extra_group.filter(|g| !g.is_empty()) {
        let gr = Group::from_name(g)
            .ok()
            .flatten()
            .ok_or_else(|| PrivError::NoGroup(g.to_string()))?;
        let mut groups = unistd::getgroups().map_err(failed)?;
        groups.push(gr.gid);
        unistd::setgroups(&groups).map_err(failed)?;
    }
    unistd::setgid(pw.gid).map_err(failed)?;
    unistd::setuid(pw.uid).map_err(failed)?;
    // Check that it took: neither id is root and root cannot be regained.
    if Uid::current().is_root()
        || Uid::effective().is_root()
        || unistd::setuid(Uid::from_raw(0)).is_ok()
    {
        return Err(PrivError::NotDropped(user.to_string()));
    }
    Ok(Dropped::To {
        user: user.to_string(),
        uid: pw.uid.as_raw(),
        gid: Gid::current().as_raw(),
    })
}
