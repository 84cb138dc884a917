//! The `write` tool (§9.5) and the replace-by-rename helper `edit` shares.
//!
//! Unlike the SDK (which truncates the target in place), the new content goes to
//! a temporary file in the same directory that is renamed over the target, so a
//! failed or interrupted write never leaves a half-written file.

use crate::input::WriteInput;
use crate::{fserr, paths::Roots, ToolOutput};
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub fn write(roots: &Roots, input: WriteInput) -> ToolOutput {
    let file_path = input.file_path.as_str();
    let result = roots.resolve("write", file_path).and_then(|path| {
        roots.check_writable("write", file_path, &path)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| fserr::message("write", file_path, &e))?;
        }
        replace_file(&path, input.content.as_bytes())
            .map_err(|e| fserr::message("write", file_path, &e))
    });
    match result {
        // Bytes, not code points as the SDK counts (see docs/notes/tools-compat.md).
        Ok(()) => ToolOutput::text(format!(
            "wrote {} bytes to {file_path}",
            input.content.len()
        )),
        Err(text) => ToolOutput::error(text),
    }
}

/// Give `path` exactly `bytes` as content: write a temporary sibling and rename
/// it over the target, keeping an existing file's permission bits. Falls back to
/// an in-place write for non-regular targets (FIFOs, devices) and when the
/// directory does not let us create the temporary file but the file is writable.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let existing = match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(io::Error::from_raw_os_error(libc::EISDIR)),
        Ok(meta) if !meta.is_file() => return write_in_place(path, bytes),
        Ok(meta) => Some(meta.permissions().mode() & 0o7777),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp_path = dir.join(format!(
        ".sandkeep-write-{:016x}.tmp",
        rand::random::<u64>()
    ));
    // 0o666 so a new file gets the same umask-derived mode as a plain create.
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&tmp_path)
    {
        Ok(file) => file,
        Err(e)
            if existing.is_some()
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EACCES | libc::EPERM | libc::EROFS)
                ) =>
        {
            return write_in_place(path, bytes);
        }
        Err(e) => return Err(e),
    };
    let result = (|| {
        file.write_all(bytes)?;
        if let Some(mode) = existing {
            file.set_permissions(Permissions::from_mode(mode))?;
        }
        drop(file);
        fs::rename(&tmp_path, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

fn write_in_place(path: &Path, bytes: &[u8]) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?
        .write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolConfig;

    fn run(dir: &Path, file_path: &str, content: &str) -> ToolOutput {
        let roots = Roots::new(&ToolConfig::new(dir));
        write(
            &roots,
            WriteInput {
                file_path: file_path.into(),
                content: content.into(),
            },
        )
    }

    #[test]
    fn writes_creates_parents_and_counts_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let out = run(tmp.path(), "f.txt", "hello world");
        assert_eq!(
            (out.is_error, out.joined_text()),
            (false, "wrote 11 bytes to f.txt".into())
        );
        let out = run(tmp.path(), "new/dir/n.txt", "héllo");
        assert_eq!(out.joined_text(), "wrote 6 bytes to new/dir/n.txt");
        assert_eq!(
            fs::read_to_string(tmp.path().join("new/dir/n.txt")).unwrap(),
            "héllo"
        );
        // Overwrite shrinks the file and leaves no temporary behind.
        run(tmp.path(), "f.txt", "x");
        assert_eq!(fs::read(tmp.path().join("f.txt")).unwrap(), b"x");
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn keeps_permissions_and_rejects_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let script = tmp.path().join("run.sh");
        fs::write(&script, "old").unwrap();
        fs::set_permissions(&script, Permissions::from_mode(0o750)).unwrap();
        run(tmp.path(), "run.sh", "new");
        assert_eq!(
            fs::metadata(&script).unwrap().permissions().mode() & 0o7777,
            0o750
        );
        fs::create_dir(tmp.path().join("sub")).unwrap();
        let out = run(tmp.path(), "sub", "x");
        assert_eq!(
            (out.is_error, out.joined_text()),
            (true, "write: sub: is a directory".into())
        );
        let out = run(tmp.path(), "run.sh/x", "x");
        // As in the SDK: creating the parent `run.sh` fails with EEXIST.
        assert_eq!(out.joined_text(), "write: run.sh/x: file already exists");
        let out = run(tmp.path(), "../x", "x");
        assert!(out
            .joined_text()
            .contains("outside the session's working directory"));
    }

    #[test]
    fn writes_through_an_inside_symlink_and_into_read_only_fails() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("ro")).unwrap();
        std::os::unix::fs::symlink("target.txt", tmp.path().join("link")).unwrap();
        run(tmp.path(), "link", "via link");
        assert_eq!(
            fs::read_to_string(tmp.path().join("target.txt")).unwrap(),
            "via link"
        );
        let mut config = ToolConfig::new(tmp.path());
        config.read_only_roots.push(tmp.path().join("ro"));
        let roots = Roots::new(&config);
        let out = write(
            &roots,
            WriteInput {
                file_path: "ro/a".into(),
                content: "x".into(),
            },
        );
        assert!(
            out.is_error
                && out
                    .joined_text()
                    .starts_with("write: ro/a is inside read-only directory ")
        );
    }
}
