//! Filesystem error phrases (§9.3): `<op>: <file_path>: <reason>`.

use std::io;

/// The SDK's reason phrase for an OS error.
pub fn reason(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::ENOENT) => "no such file or directory".into(),
        Some(libc::ENOTDIR) => "not a directory".into(),
        Some(libc::EISDIR) => "is a directory".into(),
        Some(libc::EACCES | libc::EPERM) => "permission denied".into(),
        Some(libc::EEXIST) => "file already exists".into(),
        Some(libc::ELOOP) => "too many levels of symbolic links".into(),
        Some(code) => {
            let text = nix::errno::Errno::from_raw(code).desc().to_lowercase();
            if text.is_empty() || text.starts_with("unknown") {
                "i/o error".into()
            } else {
                text
            }
        }
        None => "i/o error".into(),
    }
}

/// `<op>: <file_path>: <reason>` — the model's spelling of the path, unquoted.
pub fn message(op: &str, file_path: &str, err: &io::Error) -> String {
    format!("{op}: {file_path}: {}", reason(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases() {
        let e = |code| io::Error::from_raw_os_error(code);
        assert_eq!(
            message("read", "a/b", &e(libc::ENOENT)),
            "read: a/b: no such file or directory"
        );
        assert_eq!(reason(&e(libc::ENOTDIR)), "not a directory");
        assert_eq!(reason(&e(libc::EISDIR)), "is a directory");
        assert_eq!(reason(&e(libc::EPERM)), "permission denied");
        assert_eq!(reason(&e(libc::EACCES)), "permission denied");
        assert_eq!(reason(&e(libc::EEXIST)), "file already exists");
        assert_eq!(reason(&e(libc::ELOOP)), "too many levels of symbolic links");
        assert_eq!(reason(&e(libc::EROFS)), "read-only file system");
        assert_eq!(reason(&io::Error::other("x")), "i/o error");
    }
}
