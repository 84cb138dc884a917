//! Protected paths inside the workspace (default `.git/hooks`, `.git/config`):
//! decide, against the host view, what has to be bound read-only.
//!
//! * existing file or directory → bound read-only onto itself;
//! * missing → an empty placeholder is created (directory for `hooks`-like names,
//!   else a file) and bound read-only, so it cannot be created later;
//! * symlink into the workspace → its target is protected;
//! * symlink out of the workspace → the target, seen from inside the sandbox, gets a
//!   read-only placeholder of the target's type if it would be writable there.

use anyhow::{bail, Context};
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Names that get a directory placeholder when missing.
const DIR_NAMES: &[&str] = &["hooks", "info", "objects", "refs"];

/// One protection to apply once the workspace is mounted.
#[derive(Debug, PartialEq)]
pub enum Protection {
    /// Workspace-relative canonical path; `created` if we made a placeholder.
    Inside { rel: PathBuf, created: bool },
    /// A symlink leads out of the workspace to this absolute path.
    OutsideTarget { target: PathBuf, is_dir: bool },
}

/// Plan the protection of `rel` (relative to the host workspace `ws`).
pub fn plan_protected(ws: &Path, rel: &Path) -> anyhow::Result<Protection> {
    let ws =
        fs::canonicalize(ws).with_context(|| format!("resolving workspace {}", ws.display()))?;
    let mut current = ws.join(rel);
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&current)?;
                let base = current.parent().unwrap_or(&ws).to_path_buf();
                current = normalize(&base.join(link));
                let resolved = resolve_existing_prefix(&current);
                if !resolved.starts_with(&ws) {
                    let is_dir = fs::metadata(&resolved)
                        .map(|m| m.is_dir())
                        .unwrap_or_else(|_| wants_dir(rel));
                    return Ok(Protection::OutsideTarget {
                        target: resolved,
                        is_dir,
                    });
                }
                current = resolved;
            }
            Ok(_) => {
                let canonical = fs::canonicalize(&current)?;
                return inside(&ws, &canonical, false);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let resolved = resolve_existing_prefix(&current);
                if !resolved.starts_with(&ws) {
                    return Ok(Protection::OutsideTarget {
                        target: resolved,
                        is_dir: wants_dir(rel),
                    });
                }
                create_placeholder(&resolved, wants_dir(rel))?;
                return inside(&ws, &resolved, true);
            }
            Err(e) => bail!("checking protected path {}: {e}", current.display()),
        }
    }
    bail!(
        "protected path {} has too many levels of symbolic links",
        rel.display()
    )
}

fn inside(ws: &Path, canonical: &Path, created: bool) -> anyhow::Result<Protection> {
    match canonical.strip_prefix(ws) {
        Ok(rel) if !rel.as_os_str().is_empty() => Ok(Protection::Inside {
            rel: rel.to_path_buf(),
            created,
        }),
        _ => bail!(
            "protected path resolves to the workspace root itself ({}); refusing",
            canonical.display()
        ),
    }
}

fn wants_dir(rel: &Path) -> bool {
    rel.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| DIR_NAMES.contains(&n))
}

fn create_placeholder(path: &Path, dir: bool) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("creating parents of placeholder {}", path.display()))?;
    }
    if dir {
        fs::create_dir(path)
    } else {
        fs::File::create(path).map(drop)
    }
    .with_context(|| format!("creating placeholder for protected path {}", path.display()))
}

/// Canonicalise the longest existing prefix (following its symlinks) and append the rest.
fn resolve_existing_prefix(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while fs::symlink_metadata(&existing).is_err() {
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = fs::canonicalize(&existing).unwrap_or(existing);
    out.extend(rest.iter().rev());
    out
}

/// Lexically collapse `.` and `..`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn missing_paths_get_typed_placeholders() {
        let ws = tempfile::tempdir().unwrap();
        let hooks = plan_protected(ws.path(), Path::new(".git/hooks")).unwrap();
        assert_eq!(
            hooks,
            Protection::Inside {
                rel: ".git/hooks".into(),
                created: true
            }
        );
        assert!(ws.path().join(".git/hooks").is_dir());
        plan_protected(ws.path(), Path::new(".git/config")).unwrap();
        assert!(ws.path().join(".git/config").is_file());
    }

    #[test]
    fn symlink_inside_protects_target_and_outside_is_typed() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(ws.path().join("real/hooks")).unwrap();
        fs::create_dir(ws.path().join(".git")).unwrap();
        symlink("../real/hooks", ws.path().join(".git/hooks")).unwrap();
        symlink(outside.path(), ws.path().join(".git/config")).unwrap();
        let p = plan_protected(ws.path(), Path::new(".git/hooks")).unwrap();
        assert_eq!(
            p,
            Protection::Inside {
                rel: "real/hooks".into(),
                created: false
            }
        );
        let p = plan_protected(ws.path(), Path::new(".git/config")).unwrap();
        let canon = fs::canonicalize(outside.path()).unwrap();
        assert_eq!(
            p,
            Protection::OutsideTarget {
                target: canon,
                is_dir: true
            }
        );
    }
}
