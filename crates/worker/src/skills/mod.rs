//! Skills (protocol.md §7): resolve each of the agent's skills, download its
//! archive, extract it safely into a staging directory and swap it into
//! `<skills dir>/<name>`; remove exactly those directories when the session ends.

pub mod extract;
pub mod names;

use anyhow::{anyhow, bail, Context};
use extract::Limits;
use sandkeep_api::{Client, SkillRef, SkillVersion};
use std::future::Future;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The two skills endpoints (§7.1), behind a trait for tests.
pub trait SkillSource: Send + Sync {
    fn version(
        &self,
        skill_id: &str,
        version: &str,
    ) -> impl Future<Output = anyhow::Result<SkillVersion>> + Send;
    fn download(
        &self,
        skill_id: &str,
        version_id: &str,
        dest: &Path,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

impl SkillSource for Client {
    async fn version(&self, skill_id: &str, version: &str) -> anyhow::Result<SkillVersion> {
        Ok(self.retrieve_skill_version(skill_id, version).await?)
    }

    async fn download(&self, skill_id: &str, version_id: &str, dest: &Path) -> anyhow::Result<()> {
        self.download_skill_content(skill_id, version_id, dest)
            .await?;
        Ok(())
    }
}

/// Directory name for a skill: the last path component of its name, trimmed;
/// the skill id when that is empty, `.` or `..`.
pub fn dir_name(name: &str, skill_id: &str) -> String {
    let last = name
        .trim()
        .rsplit('/')
        .find(|p| !p.trim().is_empty())
        .unwrap_or("")
        .trim();
    match last {
        "" | "." | ".." => skill_id.to_string(),
        other => other.to_string(),
    }
}

/// Download every skill; failures are logged per skill and skipped. The
/// directories installed are appended to `installed` as they land (so a caller
/// that abandons this future part-way still knows what to remove).
pub async fn download_all<S: SkillSource>(
    source: &S,
    skills: &[SkillRef],
    skills_dir: &Path,
    installed: &mut Vec<PathBuf>,
) {
    for skill in skills {
        match download_one(source, skill, skills_dir).await {
            Ok(Some(dest)) => installed.push(dest),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(skill_id = %skill.skill_id, error = %format!("{e:#}"), "failed to download skill")
            }
        }
    }
}

async fn download_one<S: SkillSource>(
    source: &S,
    skill: &SkillRef,
    skills_dir: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    // Created (0700) when the first download starts, even if it then fails (§7.1).
    let root = real_skills_dir(skills_dir)?;
    let meta = source.version(&skill.skill_id, &skill.version).await?;
    let dest = root.join(dir_name(&meta.name, &skill.skill_id));
    let resolved = if dest.exists() {
        dest.canonicalize()?
    } else {
        dest.clone()
    };
    if !resolved.starts_with(&root) || resolved == root {
        tracing::warn!(skill_id = %skill.skill_id, name = %meta.name, "skill destination escapes the skills directory; skipping it");
        return Ok(None);
    }
    let work = tempfile::Builder::new()
        .prefix(".skill-")
        .tempdir_in(&root)
        .context("cannot create a staging directory")?;
    let archive = work.path().join("archive");
    source.download(&skill.skill_id, &meta.id, &archive).await?;
    let installed = dest.clone();
    tokio::task::spawn_blocking(move || install(&archive, work.path(), &dest, &Limits::default()))
        .await
        .map_err(|e| anyhow!("skill extraction task failed: {e}"))??;
    tracing::info!(skill_id = %skill.skill_id, version_id = %meta.id, path = %installed.display(), "skill installed");
    Ok(Some(installed))
}

/// Extract `archive` into `<work>/stage` and swap it into `dest`; an existing
/// `dest` is only replaced once extraction succeeded.
pub fn install(archive: &Path, work: &Path, dest: &Path, limits: &Limits) -> anyhow::Result<()> {
    let stage = work.join("stage");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&stage)
        .context("cannot create the staging directory")?;
    extract::extract(archive, &stage, limits)?;
    let replaced = work.join("replaced");
    let had_old = dest.symlink_metadata().is_ok();
    if had_old {
        std::fs::rename(dest, &replaced)
            .with_context(|| format!("cannot move the old {} aside", dest.display()))?;
    }
    if let Err(e) = std::fs::rename(&stage, dest) {
        if had_old {
            let _ = std::fs::rename(&replaced, dest);
        }
        return Err(e).with_context(|| format!("cannot move the skill into {}", dest.display()));
    }
    Ok(())
}

/// `<workspace>/skills` as a real directory, created (0700) if missing.
///
/// The session's own code may have replaced `skills` with a symlink to a host
/// path; the worker runs with more privilege than the session and must never
/// install or delete through it. No process of the session runs while skills are
/// installed (before its sandbox starts) or removed (after it closed), so this
/// check cannot be raced from inside the sandbox.
fn real_skills_dir(skills_dir: &Path) -> anyhow::Result<PathBuf> {
    match std::fs::symlink_metadata(skills_dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => bail!(
            "{} is not a directory (a symlink or file was left there); refusing to install skills through it",
            skills_dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .mode(0o700)
            .create(skills_dir)
            .with_context(|| format!("cannot create {}", skills_dir.display()))?,
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", skills_dir.display())),
    }
    // The parent (the session workspace) is created and owned by the worker.
    let parent = skills_dir
        .parent()
        .unwrap_or(Path::new("/"))
        .canonicalize()?;
    Ok(parent.join(skills_dir.file_name().unwrap_or_default()))
}

/// Remove the skill directories this item installed; errors are ignored. A
/// directory whose `skills` parent was swapped for a symlink (or that became one
/// itself) is left alone rather than followed.
pub fn remove_installed(dirs: &[PathBuf]) {
    for dir in dirs {
        let real = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
        if dir.parent().is_some_and(real) && real(dir) {
            let _ = std::fs::remove_dir_all(dir);
        } else {
            tracing::warn!(path = %dir.display(), "skill directory was replaced by a link or file; not removing through it");
        }
    }
}

#[cfg(test)]
mod tests;
