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
    unsafe { opts.open(dir) }
}
