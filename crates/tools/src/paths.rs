//! Path resolution and confinement for the file tools (§9.2).
//!
//! Resolution is lexical first (`a/../b` never visits `a`), then every symlink is
//! followed by hand — including dangling ones and the last component — so the
//! containment check sees where the kernel would really go. Missing trailing
//! components are kept as spelled; more than 40 hops is a loop (ELOOP).

use crate::{fserr, pyrepr::repr, ToolConfig};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlink hops before resolution reports ELOOP (Linux's own limit).
const MAX_SYMLINK_HOPS: u32 = 40;

/// Collapse `.` and `..` of an absolute path without touching the filesystem
/// (`/..` stays `/`).
pub fn lexical_normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Follow every symlink in the absolute path `path`. Components that do not exist
/// (or sit below a non-directory) are kept as spelled; other lstat/readlink
/// errors are returned, as is ELOOP after [`MAX_SYMLINK_HOPS`].
pub fn canonicalize(path: &Path) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::from("/");
    let mut pending: VecDeque<OsString> = components(path).collect();
    let mut hops = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let next = resolved.join(&name);
        match std::fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&next)?;
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                for comp in components(&target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front(comp);
                }
            }
            Ok(_) => resolved = next,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                resolved = next
            }
            Err(e) => return Err(e),
        }
    }
    Ok(resolved)
}

/// Names and `..` of a path, dropping the root and `.`.
fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    })
}

/// Resolve a configured root: absolute (against the process cwd), then canonical
/// when possible.
fn resolve_root(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let lexical = lexical_normalize(&absolute);
    canonicalize(&lexical).unwrap_or(lexical)
}

/// The resolved workdir and roots of one toolset.
#[derive(Debug, Clone)]
pub struct Roots {
    pub workdir: PathBuf,
    pub allowed: Vec<PathBuf>,
    pub read_only: Vec<PathBuf>,
}

impl Roots {
    pub fn new(config: &ToolConfig) -> Self {
        Self {
            workdir: resolve_root(&config.workdir),
            allowed: config
                .allowed_roots
                .iter()
                .map(|p| resolve_root(p))
                .collect(),
            read_only: config
                .read_only_roots
                .iter()
                .map(|p| resolve_root(p))
                .collect(),
        }
    }

    /// Whether a canonical path is the workdir, an allowed root, or below one
    /// (component-wise: `/work2` is not inside `/work`).
    pub fn contains(&self, canonical: &Path) -> bool {
        std::iter::once(&self.workdir)
            .chain(&self.allowed)
            .any(|root| canonical.starts_with(root))
    }

    /// §9.2: resolve the model's `file_path` for `tool`, returning the canonical
    /// path or the exact error text.
    pub fn resolve(&self, tool: &str, file_path: &str) -> Result<PathBuf, String> {
        if file_path.contains('\0') {
            return Err(format!(
                "{tool}: path {}: embedded null byte",
                repr(file_path)
            ));
        }
        let candidate = lexical_normalize(&self.workdir.join(file_path));
        let canonical = canonicalize(&candidate)
            .map_err(|e| format!("{tool}: path {}: {}", repr(file_path), fserr::reason(&e)))?;
        if self.contains(&canonical) {
            return Ok(canonical);
        }
        let others = if self.allowed.is_empty() {
            ""
        } else {
            " and its other permitted directories"
        };
        Err(format!(
            "{tool}: path {} is outside the session's working directory{others}",
            repr(file_path)
        ))
    }

    /// Refuse `write`/`edit` inside a read-only root.
    pub fn check_writable(
        &self,
        op: &str,
        file_path: &str,
        canonical: &Path,
    ) -> Result<(), String> {
        match self
            .read_only
            .iter()
            .find(|root| canonical.starts_with(root))
        {
            Some(root) => Err(format!(
                "{op}: {file_path} is inside read-only directory {}",
                root.display()
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn roots(dir: &Path) -> Roots {
        Roots::new(&ToolConfig::new(dir))
    }

    #[test]
    fn resolves_inside_and_rejects_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("w");
        std::fs::create_dir_all(work.join("a")).unwrap();
        std::fs::create_dir_all(tmp.path().join("w2")).unwrap();
        let r = roots(&work);
        let w = &r.workdir;
        assert_eq!(r.resolve("read", "a/b.txt").unwrap(), w.join("a/b.txt"));
        assert_eq!(r.resolve("read", "a/../b.txt").unwrap(), w.join("b.txt"));
        assert_eq!(r.resolve("read", "./").unwrap(), *w);
        let abs = w.join("a.txt");
        assert_eq!(r.resolve("read", abs.to_str().unwrap()).unwrap(), abs);
        assert_eq!(
            r.resolve("read", "../etc/passwd").unwrap_err(),
            "read: path '../etc/passwd' is outside the session's working directory"
        );
        assert!(r.resolve("read", "/etc/passwd").is_err());
        assert_eq!(
            r.resolve("glob", "../w2/file").unwrap_err(),
            "glob: path '../w2/file' is outside the session's working directory"
        );
        assert_eq!(
            r.resolve("read", "it's/../../x").unwrap_err(),
            "read: path \"it's/../../x\" is outside the session's working directory"
        );
        assert_eq!(
            r.resolve("read", "a\0b").unwrap_err(),
            "read: path 'a\\x00b': embedded null byte"
        );
    }

    #[test]
    fn allowed_roots_change_the_message_and_admit_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let (work, extra) = (tmp.path().join("w"), tmp.path().join("extra"));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&extra).unwrap();
        let mut config = ToolConfig::new(&work);
        config.allowed_roots.push(extra.clone());
        let r = Roots::new(&config);
        assert!(r.resolve("read", extra.join("f").to_str().unwrap()).is_ok());
        assert_eq!(
            r.resolve("read", "/etc/passwd").unwrap_err(),
            "read: path '/etc/passwd' is outside the session's working directory and its other permitted directories"
        );
    }

    #[test]
    fn symlinks_are_followed_and_escapes_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let (work, outside) = (tmp.path().join("work"), tmp.path().join("outside"));
        std::fs::create_dir_all(work.join("real")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, work.join("escape")).unwrap();
        symlink("/etc/passwd", work.join("pw")).unwrap();
        symlink("real", work.join("inner")).unwrap();
        symlink("real/missing/deeper", work.join("dangling")).unwrap();
        symlink("../outside/new", work.join("dangling_out")).unwrap();
        let r = roots(&work);
        assert_eq!(
            r.resolve("read", "escape/secret.txt").unwrap_err(),
            "read: path 'escape/secret.txt' is outside the session's working directory"
        );
        let pw = r.workdir.join("pw");
        assert!(r
            .resolve("read", pw.to_str().unwrap())
            .unwrap_err()
            .contains("is outside"));
        assert_eq!(
            r.resolve("read", "inner/f").unwrap(),
            r.workdir.join("real/f")
        );
        assert_eq!(
            r.resolve("write", "dangling").unwrap(),
            r.workdir.join("real/missing/deeper")
        );
        assert!(r
            .resolve("write", "dangling_out")
            .unwrap_err()
            .contains("is outside"));
        // `..` collapses lexically before `inner` is followed.
        assert_eq!(
            r.resolve("read", "inner/../x").unwrap(),
            r.workdir.join("x")
        );
        // A link target's own `..` is physical.
        symlink("real/../escape/..", work.join("up")).unwrap();
        assert!(r.resolve("read", "up/work/x").is_ok());
    }

    #[test]
    fn loops_report_eloop() {
        let tmp = tempfile::tempdir().unwrap();
        symlink("loop2", tmp.path().join("loop1")).unwrap();
        symlink("loop1", tmp.path().join("loop2")).unwrap();
        symlink(".", tmp.path().join("self")).unwrap();
        let r = roots(tmp.path());
        assert_eq!(
            r.resolve("read", "loop1").unwrap_err(),
            "read: path 'loop1': too many levels of symbolic links"
        );
        // A chain of 30 self-links through a directory is fine (each hop counted once).
        assert!(r.resolve("read", &"self/".repeat(30)).is_ok());
        assert!(r
            .resolve("read", &"self/".repeat(41))
            .unwrap_err()
            .contains("too many levels"));
    }

    #[test]
    fn file_used_as_directory_is_not_a_resolution_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f.txt"), "x").unwrap();
        let r = roots(tmp.path());
        assert_eq!(
            r.resolve("read", "f.txt/x").unwrap(),
            r.workdir.join("f.txt/x")
        );
    }

    #[test]
    fn read_only_roots() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("ro")).unwrap();
        let mut config = ToolConfig::new(tmp.path());
        config.read_only_roots.push(tmp.path().join("ro"));
        let r = Roots::new(&config);
        let p = r.resolve("write", "ro/x").unwrap();
        let err = r.check_writable("write", "ro/x", &p).unwrap_err();
        assert_eq!(
            err,
            format!(
                "write: ro/x is inside read-only directory {}",
                r.read_only[0].display()
            )
        );
        assert!(r
            .check_writable("write", "rox", &r.workdir.join("rox"))
            .is_ok());
    }
}
