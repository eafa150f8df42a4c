//! The Unix underneath: dropping privileges, durable directory syncs, passing
//! file descriptors. This is the only module with `unsafe`, and every block
//! says why it is sound.

pub mod dirsync;
pub mod fdpass;
pub mod lmdb;
pub mod privs;
pub mod rename;
pub mod signals;

use std::fs::File;
use std::io;
use std::path::Path;

/// Makes a directory's entries (a rename, a link, a new file) durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    crate::stats::fsync();
    File::open(dir)?.sync_all()
}

/// The system's one-minute load average, if the system tells it.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The local wall-clock time of `secs` since the epoch, as (month 1-12, day
/// of month, hour, minute, second), from the C library's time zone rules.
pub fn local_time(secs: i64) -> Option<(u32, u32, u32, u32, u32)> {
    // time_t is i64 here but 32 bits on some systems.
    #[allow(clippy::useless_conversion)]
    let t: libc::time_t = secs.try_into().ok()?;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are
    // valid for the call, and localtime_r (unlike localtime) keeps no shared
    // buffer, so concurrent callers do not race.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return None;
        }
        tm
    };
    Some((
        u32::try_from(tm.tm_mon).ok()? + 1,
        u32::try_from(tm.tm_mday).ok()?,
        u32::try_from(tm.tm_hour).ok()?,
        u32::try_from(tm.tm_min).ok()?,
        u32::try_from(tm.tm_sec).ok()?,
    ))
}
