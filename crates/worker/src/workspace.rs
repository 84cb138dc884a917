//! Per-session working directories.

use crate::config::{WorkdirLayout, WorkerConfig};
use anyhow::{bail, Context};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A session's directory, and whether it is removed once the session has ended.
///
/// A per-session directory lives as long as the *session*, not the work item: a
/// dormant session that receives new input comes back as a new work item and must
/// find its files again. It is removed when the session is terminated or deleted.
#[derive(Debug)]
pub struct Workspace {
    pub path: PathBuf,
    removable: bool,
}

impl Workspace {
    /// Create (PerSession) or reuse (Shared) the session's directory.
    pub fn open(config: &WorkerConfig, session_id: &str) -> anyhow::Result<Workspace> {
        match config.layout {
            WorkdirLayout::Shared => Ok(Workspace {
                path: config.workdir.clone(),
                removable: false,
            }),
            WorkdirLayout::PerSession => {
                if !is_plain_component(session_id) {
                    bail!("session id {session_id:?} cannot be used as a directory name; refusing to create its workspace");
                }
                let sessions = config.workdir.join("sessions");
                // 0711: a sandboxed session runs under its own subordinate uid and must
                // be able to traverse to its directory, but not list its neighbours.
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o711)
                    .create(&sessions)
                    .with_context(|| {
                        format!(
                            "cannot create {}; check that --workdir is writable",
                            sessions.display()
                        )
                    })?;
                // The umask may have narrowed the mode (e.g. 077 → 0700).
                std::fs::set_permissions(&sessions, std::fs::Permissions::from_mode(0o711))
                    .with_context(|| format!("cannot set the mode of {}", sessions.display()))?;
                let path = sessions.join(session_id);
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true).mode(0o700);
                builder.create(&path).with_context(|| {
                    format!("cannot create the session workspace {}", path.display())
                })?;
                Ok(Workspace {
                    path,
                    removable: !config.keep_workspace,
                })
            }
        }
    }

    /// Remove the directory if the session has ended and it is not to be kept.
    pub fn close(self, session_ended: bool) {
        if self.removable && session_ended {
            if let Err(e) = std::fs::remove_dir_all(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "could not remove the session workspace");
            }
        }
    }
}

/// Remove the per-session directory of a session found already terminated.
pub fn remove_ended(config: &WorkerConfig, session_id: &str) {
    if config.layout == WorkdirLayout::PerSession
        && !config.keep_workspace
        && is_plain_component(session_id)
    {
        let path = config.workdir.join("sessions").join(session_id);
        if path.exists() {
            Workspace {
                path,
                removable: true,
            }
            .close(true);
        }
    }
}

fn is_plain_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// `<workspace>/skills`.
pub fn skills_dir(workspace: &Path) -> PathBuf {
    workspace.join("skills")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn per_session_dirs_are_private_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let config = WorkerConfig {
            workdir: root.path().to_path_buf(),
            ..WorkerConfig::default()
        };
        let ws = Workspace::open(&config, "sesn_1").unwrap();
        assert_eq!(ws.path, root.path().join("sessions/sesn_1"));
        assert_eq!(
            std::fs::metadata(&ws.path).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let path = ws.path.clone();
        std::fs::write(path.join("notes.md"), "kept between work items").unwrap();
        // Only the work item ended (idle): the next item of this session finds its files.
        ws.close(false);
        assert!(path.join("notes.md").is_file());
        // The session ended: its directory goes.
        Workspace::open(&config, "sesn_1").unwrap().close(true);
        assert!(!path.exists());
        assert!(Workspace::open(&config, "../x").is_err());
        assert!(Workspace::open(&config, "..").is_err());
    }

    #[test]
    fn sessions_dir_is_traversable_whatever_the_umask() {
        let root = tempfile::tempdir().unwrap();
        let config = WorkerConfig {
            workdir: root.path().to_path_buf(),
            ..WorkerConfig::default()
        };
        // SAFETY: umask is process-wide; no other test here depends on it.
        let old = unsafe { libc::umask(0o077) };
        let ws = Workspace::open(&config, "sesn_umask");
        unsafe { libc::umask(old) };
        ws.unwrap();
        let mode = std::fs::metadata(root.path().join("sessions"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o711);
    }

    #[test]
    fn kept_and_shared_dirs_stay() {
        let root = tempfile::tempdir().unwrap();
        let keep = WorkerConfig {
            workdir: root.path().to_path_buf(),
            keep_workspace: true,
            ..WorkerConfig::default()
        };
        let ws = Workspace::open(&keep, "s").unwrap();
        let path = ws.path.clone();
        ws.close(true);
        assert!(path.exists());
        let shared = WorkerConfig {
            layout: WorkdirLayout::Shared,
            ..keep
        };
        let ws = Workspace::open(&shared, "s").unwrap();
        assert_eq!(ws.path, root.path());
        ws.close(true);
        assert!(root.path().exists());
    }
}
