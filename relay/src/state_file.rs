//! Small state files in `data_dir` (the accounting counter, the onion keys' creation times):
//! read with a size limit, written to a temporary name with mode 0600 and renamed into place,
//! so a crash leaves the old or the new file, never half of one. Secrets live elsewhere
//! (`onionlab_link::keystore`).

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest state file read.
pub const MAX_STATE_LEN: u64 = 4096;

/// The file's text; `Ok(None)` when it does not exist. Longer files are cut at
/// [`MAX_STATE_LEN`] (their parsers then refuse them).
pub fn read(path: &Path) -> std::io::Result<Option<String>> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.take(MAX_STATE_LEN).read_to_string(&mut text)?;
    Ok(Some(text))
}

/// Replaces the file with `text`.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn written_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state");
        assert_eq!(read(&path).unwrap(), None);
        write(&path, "one\n").unwrap();
        write(&path, "two\n").unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some("two\n"));
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        fs::write(&path, vec![b'x'; 10_000]).unwrap();
        assert_eq!(read(&path).unwrap().unwrap().len() as u64, MAX_STATE_LEN);
    }
}
