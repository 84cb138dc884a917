//! Protected paths inside the workspace (default `.git/hooks`, `.git/config`):
//! decide, against the host view, what to mount so that a protected path can be
//! neither written nor removed, renamed or replaced from inside.
//!
//! The path is walked name by name, the way the kernel resolves it:
//! * every directory on the way ([`Protection::Pin`]) is bind-mounted onto itself
//!   (read-write): a mount point cannot be renamed or removed (`EBUSY`), so nobody
//!   can move `.git` away and recreate it;
//! * every symlink on the way ([`Protection::PinLink`]) is pinned the same way,
//!   the bind made through an `O_PATH|O_NOFOLLOW` descriptor so that the mount
//!   lands on the link itself; its target is then walked (and pinned) in turn;
//! * the final name ([`Protection::ReadOnly`]) is bound read-only onto itself;
//! * a missing name is created first: directories on the way, and for the final
//!   name an empty placeholder (a directory for `hooks`-like names, else a file);
//! * a symlink out of the workspace ends the walk ([`Protection::OutsideTarget`]):
//!   the target, seen from inside the sandbox, gets a read-only placeholder of the
//!   target's type if it would be writable there.

use anyhow::{bail, Context};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Names that get a directory placeholder when missing.
const DIR_NAMES: &[&str] = &["hooks", "info", "objects", "refs"];
/// Where the workspace is inside the sandbox (absolute symlinks may name it).
const SANDBOX_WORKSPACE: &str = "/workspace";
/// Symlinks followed at most per protected path (the kernel's limit).
const MAX_LINKS: usize = 40;

/// One mount to make once the workspace is mounted; paths are workspace-relative.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protection {
    /// A directory on the way: bound onto itself, stays writable.
    Pin(PathBuf),
    /// A symlink on the way: pinned, its target is protected separately.
    PinLink(PathBuf),
    /// The protected file or directory itself: bound read-only onto itself.
    ReadOnly(PathBuf),
    /// A symlink leads out of the workspace to this absolute path.
    OutsideTarget { target: PathBuf, is_dir: bool },
}

/// All protections of one session, in mount order (parents before children), and
/// the host paths of the placeholders created for them (parents first).
#[derive(Debug, Default)]
pub struct Plan {
    pub protections: Vec<Protection>,
    pub created: Vec<PathBuf>,
}

/// Plan the protection of every path of `rels` (relative to the host workspace
/// `ws`). Placeholders are created now, owned by `owner` (ns uid and gid; 0 = as is).
pub fn plan_all(ws: &Path, rels: &[PathBuf], owner: u32) -> anyhow::Result<Plan> {
    let ws =
        fs::canonicalize(ws).with_context(|| format!("resolving workspace {}", ws.display()))?;
    let mut plan = Plan::default();
    for rel in rels {
        walk(&ws, rel, owner, &mut plan)?;
    }
    // A name bound read-only is pinned by that mount already.
    let read_only: Vec<PathBuf> = plan
        .protections
        .iter()
        .filter_map(|p| match p {
            Protection::ReadOnly(rel) => Some(rel.clone()),
            _ => None,
        })
        .collect();
    plan.protections
        .retain(|p| !matches!(p, Protection::Pin(rel) if read_only.contains(rel)));
    plan.protections.sort_by_key(|p| (depth(p), p.clone()));
    plan.protections.dedup();
    Ok(plan)
}

fn depth(p: &Protection) -> usize {
    match p {
        Protection::Pin(rel) | Protection::PinLink(rel) | Protection::ReadOnly(rel) => {
            rel.components().count()
        }
        Protection::OutsideTarget { .. } => usize::MAX,
    }
}

/// Walk `rel` from the workspace root, following symlinks, recording each step.
fn walk(ws: &Path, rel: &Path, owner: u32, plan: &mut Plan) -> anyhow::Result<()> {
    let mut todo: VecDeque<OsString> = names(rel)?;
    let mut current = ws.to_path_buf();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        let path = current.join(&name);
        let last = todo.is_empty();
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_placeholder(&path, !last || wants_dir(rel), owner)?;
                plan.created.push(path.clone());
                fs::symlink_metadata(&path)?
            }
            Err(e) => bail!("checking protected path {}: {e}", path.display()),
        };
        let inside = path.strip_prefix(ws).expect("walk stays in the workspace");
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                bail!(
                    "protected path {} has too many levels of symbolic links",
                    rel.display()
                );
            }
            plan.protections
                .push(Protection::PinLink(inside.to_path_buf()));
            let target = link_target(ws, &current, &fs::read_link(&path)?);
            match target.strip_prefix(ws) {
                Ok(within) => {
                    // Continue from the workspace root along the target's names.
                    let mut rest = names(within)?;
                    rest.extend(todo.drain(..));
                    todo = rest;
                    current = ws.to_path_buf();
                    if todo.is_empty() {
                        bail!(
                            "protected path {} resolves to the workspace root itself; refusing",
                            rel.display()
                        );
                    }
                }
                Err(_) => {
                    let mut outside = target;
                    outside.extend(todo.drain(..));
                    let resolved = resolve_existing_prefix(&outside);
                    let is_dir = fs::metadata(&resolved)
                        .map(|m| m.is_dir())
                        .unwrap_or_else(|_| wants_dir(rel));
                    plan.protections.push(Protection::OutsideTarget {
                        target: resolved,
                        is_dir,
                    });
                    return Ok(());
                }
            }
        } else if last || !meta.is_dir() {
            // The protected name itself, or a file where a directory was expected
            // (e.g. a worktree's `.git` file): read-only, so it cannot be replaced.
            plan.protections
                .push(Protection::ReadOnly(inside.to_path_buf()));
            return Ok(());
        } else {
            plan.protections.push(Protection::Pin(inside.to_path_buf()));
            current = path;
        }
    }
    Ok(())
}

/// The host path a symlink in `dir` (a real directory of the workspace) points
/// to; an absolute target under `/workspace` means the workspace, as inside.
fn link_target(ws: &Path, dir: &Path, link: &Path) -> PathBuf {
    if let Ok(within) = link.strip_prefix(SANDBOX_WORKSPACE) {
        return normalize(&ws.join(within));
    }
    normalize(&dir.join(link))
}

/// The plain names of a relative path (`..` is refused by policy validation).
fn names(rel: &Path) -> anyhow::Result<VecDeque<OsString>> {
    rel.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| match c {
            Component::Normal(n) => Ok(n.to_os_string()),
            _ => bail!(
                "protected path {} must stay inside the workspace",
                rel.display()
            ),
        })
        .collect()
}

fn wants_dir(rel: &Path) -> bool {
    rel.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| DIR_NAMES.contains(&n))
}

fn create_placeholder(path: &Path, dir: bool, owner: u32) -> anyhow::Result<()> {
    if dir {
        fs::create_dir(path)
    } else {
        fs::File::create(path).map(drop)
    }
    .with_context(|| format!("creating placeholder for protected path {}", path.display()))?;
    if owner != 0 {
        std::os::unix::fs::lchown(path, Some(owner), Some(owner))
            .with_context(|| format!("handing placeholder {} to the workload", path.display()))?;
    }
    Ok(())
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
    use Protection::*;

    fn rels(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn missing_paths_get_typed_placeholders_and_pinned_parents() {
        let ws = tempfile::tempdir().unwrap();
        let plan = plan_all(ws.path(), &rels(&[".git/hooks", ".git/config"]), 0).unwrap();
        assert_eq!(
            plan.protections,
            vec![
                Pin(".git".into()),
                ReadOnly(".git/config".into()),
                ReadOnly(".git/hooks".into())
            ]
        );
        assert!(ws.path().join(".git/hooks").is_dir());
        assert!(ws.path().join(".git/config").is_file());
        let canon = fs::canonicalize(ws.path()).unwrap();
        assert_eq!(
            plan.created,
            vec![
                canon.join(".git"),
                canon.join(".git/hooks"),
                canon.join(".git/config")
            ]
        );
    }

    #[test]
    fn symlinks_on_the_way_are_pinned_and_their_targets_walked() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(ws.path().join("real/hooks")).unwrap();
        fs::create_dir(ws.path().join(".git")).unwrap();
        symlink("../real/hooks", ws.path().join(".git/hooks")).unwrap();
        symlink(outside.path(), ws.path().join(".git/config")).unwrap();
        symlink("/workspace/real", ws.path().join("abs")).unwrap();
        let plan = plan_all(
            ws.path(),
            &rels(&[".git/hooks", ".git/config", "abs/hooks"]),
            0,
        )
        .unwrap();
        let canon = fs::canonicalize(outside.path()).unwrap();
        assert_eq!(
            plan.protections,
            vec![
                Pin(".git".into()),
                Pin("real".into()),
                PinLink("abs".into()),
                PinLink(".git/config".into()),
                PinLink(".git/hooks".into()),
                ReadOnly("real/hooks".into()),
                OutsideTarget {
                    target: canon,
                    is_dir: true
                }
            ]
        );
        assert!(plan.created.is_empty());
    }

    #[test]
    fn a_link_to_the_workspace_root_or_a_loop_is_refused() {
        let ws = tempfile::tempdir().unwrap();
        symlink(".", ws.path().join("self")).unwrap();
        symlink("loop", ws.path().join("loop")).unwrap();
        let err = plan_all(ws.path(), &rels(&["self"]), 0).unwrap_err();
        assert!(err.to_string().contains("workspace root"), "{err}");
        let err = plan_all(ws.path(), &rels(&["loop"]), 0).unwrap_err();
        assert!(err.to_string().contains("symbolic links"), "{err}");
    }
}
