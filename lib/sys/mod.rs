//! The Unix underneath: dropping privileges, durable directory syncs, passing
//! file descriptors. This is the only module with `unsafe`, and every block
//! says why it is sound.

pub mod fdpass;
pub mod lmdb;
pub mod privs;
pub mod signals;

use std::fs::File;
use std::io;
use std::path::Path;

/// Makes a directory's entries (a rename, a link, a new file) durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The system's one-minute load average, if the system tells it.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
