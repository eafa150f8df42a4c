//! Staging files: where a message that arrives over a long time (an IMAP
//! APPEND literal of many megabytes) is written as it comes, so it is never
//! whole in memory, before it is delivered like any other append.
//!
//! A staging file lives in the Maildir's own `tmp/` (the same file system
//! as the mail, under the same owner) and is unlinked as soon as it is
//! made: it has no name a reader could see, and whatever way the writer
//! ends (a dropped connection, a crash) the space is given back when the
//! descriptor is closed. Nothing here writes into `new/` or `cur/`; the
//! caller hands the file's contents to [`super::Folder::append`].

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::time::SystemTime;

use super::error::io_err;
use super::{name, Maildir, Result};

impl Maildir {
    /// A new, empty, already unlinked file in `ROOT/tmp/`, open for
    /// reading and writing.
    pub fn stage(&self) -> Result<File> {
        let path = self
            .root()
            .join("tmp")
            .join(name::unique(SystemTime::now(), Some("stage")));
        // O_EXCL: two writers never share a file.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("create", &path))?;
        // A crash between the create and this unlink leaves an empty file
        // in tmp/, which the usual tmp/ cleaning removes.
        fs::remove_file(&path).map_err(io_err("unlink", &path))?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn a_staging_file_has_no_name() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path().join("u")).unwrap();
        let mut f = md.stage().unwrap();
        f.write_all(b"Subject: x\n\nbody\n").unwrap();
        assert_eq!(fs::read_dir(md.root().join("tmp")).unwrap().count(), 0);
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "Subject: x\n\nbody\n");
    }
}
