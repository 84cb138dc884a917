//! Copy a real directory into the session workspace, as git would see it.
//!
//! `.gitignore` rules are honoured (so `target/` and virtualenvs stay behind), `.git`
//! itself is skipped, and symlinks are copied as symlinks. The source is only read.

use anyhow::Context;
use std::path::Path;

/// What the copy did, for the transcript.
#[derive(Debug, Default, Clone, Copy)]
pub struct CopyStats {
    pub files: u64,
    pub bytes: u64,
}

/// Files larger than this are left out: a demo workspace has no use for them.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

pub fn copy_tree(source: &Path, dest: &Path) -> anyhow::Result<CopyStats> {
    let source = source
        .canonicalize()
        .with_context(|| format!("cannot open --source {}", source.display()))?;
    if !source.is_dir() {
        anyhow::bail!("--source {} is not a directory", source.display());
    }
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let mut stats = CopyStats::default();
    let walker = ignore::WalkBuilder::new(&source)
        .hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    for entry in walker {
        let entry = entry.context("cannot walk the source directory")?;
        let rel = entry.path().strip_prefix(&source).unwrap_or(entry.path());
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(rel);
        let Some(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            std::os::unix::fs::symlink(link, &target)?;
        } else if kind.is_file() {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if len > MAX_FILE_BYTES {
                continue;
            }
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
            stats.files += 1;
            stats.bytes += len;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_gitignore_and_skips_git_dir() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join(".gitignore"), "target/\n").unwrap();
        std::fs::create_dir_all(src.path().join("target")).unwrap();
        std::fs::write(src.path().join("target/big.bin"), "x").unwrap();
        std::fs::create_dir_all(src.path().join(".git")).unwrap();
        std::fs::write(src.path().join(".git/HEAD"), "ref").unwrap();
        std::fs::create_dir_all(src.path().join("src")).unwrap();
        std::fs::write(src.path().join("src/main.rs"), "fn main() {}\n").unwrap();
        let stats = copy_tree(src.path(), dst.path()).unwrap();
        assert!(dst.path().join("src/main.rs").is_file());
        assert!(dst.path().join(".gitignore").is_file());
        assert!(!dst.path().join("target").exists());
        assert!(!dst.path().join(".git").exists());
        assert_eq!(stats.files, 2);
    }

    #[test]
    fn missing_source_is_a_clear_error() {
        let dst = tempfile::tempdir().unwrap();
        let err = copy_tree(Path::new("/nonexistent/sandkeep-demo"), dst.path()).unwrap_err();
        assert!(format!("{err:#}").contains("cannot open --source"));
    }
}
