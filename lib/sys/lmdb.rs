//! Opening an LMDB environment: heed marks it `unsafe` because the data file
//! is a memory map, so it lives here with the other unsafe code.

use std::path::Path;

use heed::{Env, EnvOpenOptions, WithoutTls};

/// Opens (creating its files if missing) the LMDB environment in the existing
/// directory `dir` with room for `max_dbs` named databases and a map of up to
/// `map_size` bytes. Read transactions are not tied to a thread (MDB_NOTLS),
/// so async tasks may use them.
pub fn open_env(dir: &Path, map_size: usize, max_dbs: u32) -> heed::Result<Env<WithoutTls>> {
    let mut opts = EnvOpenOptions::new().read_txn_without_tls();
    opts.map_size(map_size).max_dbs(max_dbs).max_readers(1024);
    // SAFETY: the map is only ever changed through LMDB itself: every program
    // of the suite opens the environment through this function (same flags,
    // locking on), nothing truncates or rewrites the files behind LMDB's back,
    // and heed refuses a second open of the same path in one process.
    let env = unsafe { opts.open(dir) }?;
    give_to_directory_owner(dir)?;
    Ok(env)
}

/// Run as root (kmpctl writing the user database), LMDB creates its files as
/// root; the daemon that owns the directory must still open them. So the
/// files take the directory's owner and group.
fn give_to_directory_owner(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !super::privs::is_root() {
        return Ok(());
    }
    let d = std::fs::metadata(dir)?;
    for name in ["data.mdb", "lock.mdb"] {
        let p = dir.join(name);
        match std::fs::metadata(&p) {
            Ok(m) if m.uid() != d.uid() || m.gid() != d.gid() => {
                std::os::unix::fs::chown(&p, Some(d.uid()), Some(d.gid()))?;
            }
            _ => {}
        }
        // A group-writable directory (kmpadm, kmp-admind's user, is in the
        // database's group): its files are group-writable too.
        if d.mode() & 0o070 == 0o070 {
            if let Ok(m) = std::fs::metadata(&p) {
                if m.mode() & 0o060 != 0o060 {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = (m.mode() & 0o777) | 0o060;
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
                }
            }
        }
    }
    Ok(())
}
