//! Download/placement tests (protocol.md §12.6 cases 137–139).

use super::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;

struct FakeSource {
    /// skill_id → (name, archive bytes or None for a failing download)
    skills: Vec<(&'static str, &'static str, Option<Vec<u8>>)>,
    requests: Mutex<Vec<String>>,
}

impl SkillSource for FakeSource {
    async fn version(&self, skill_id: &str, version: &str) -> anyhow::Result<SkillVersion> {
        self.requests
            .lock()
            .unwrap()
            .push(format!("version {skill_id} {version}"));
        let (_, name, _) = self
            .skills
            .iter()
            .find(|s| s.0 == skill_id)
            .ok_or_else(|| anyhow!("HTTP 404"))?;
        Ok(SkillVersion {
            kind: "skill_version".into(),
            id: format!("skillver_{skill_id}"),
            skill_id: skill_id.into(),
            name: name.to_string(),
            description: None,
        })
    }

    async fn download(&self, skill_id: &str, version_id: &str, dest: &Path) -> anyhow::Result<()> {
        self.requests
            .lock()
            .unwrap()
            .push(format!("content {skill_id} {version_id}"));
        let (_, _, bytes) = self.skills.iter().find(|s| s.0 == skill_id).unwrap();
        let bytes = bytes.as_ref().ok_or_else(|| anyhow!("HTTP 500"))?;
        std::fs::write(dest, bytes)?;
        Ok(())
    }
}

fn skill_zip() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = |mode| zip::write::SimpleFileOptions::default().unix_permissions(mode);
    writer.start_file("pdf/SKILL.md", opts(0o644)).unwrap();
    writer.write_all(b"# pdf").unwrap();
    writer
        .start_file("pdf/scripts/run.sh", opts(0o755))
        .unwrap();
    writer.write_all(b"#!/bin/sh").unwrap();
    writer.finish().unwrap().into_inner()
}

fn skill_ref(id: &str) -> SkillRef {
    SkillRef {
        kind: "custom".into(),
        skill_id: id.into(),
        version: "latest".into(),
    }
}

#[test]
fn dir_names() {
    assert_eq!(dir_name("pdf", "s"), "pdf");
    assert_eq!(dir_name(" a/b/pdf  ", "s"), "pdf");
    assert_eq!(dir_name("a/", "s"), "a");
    assert_eq!(dir_name("..", "skill_1"), "skill_1");
    assert_eq!(dir_name("  ", "skill_1"), "skill_1");
    assert_eq!(dir_name("x/.", "skill_1"), "skill_1");
}

#[tokio::test]
async fn case_137_138_download_place_and_remove() {
    let root = tempfile::tempdir().unwrap();
    let skills_dir = root.path().join("skills");
    let source = FakeSource {
        skills: vec![("skill_1", "pdf", Some(skill_zip()))],
        requests: Mutex::new(vec![]),
    };
    let mut installed = Vec::new();
    download_all(
        &source,
        &[skill_ref("skill_1")],
        &skills_dir,
        &mut installed,
    )
    .await;
    assert_eq!(
        *source.requests.lock().unwrap(),
        vec!["version skill_1 latest", "content skill_1 skillver_skill_1"]
    );
    let pdf = skills_dir.canonicalize().unwrap().join("pdf");
    assert_eq!(installed, vec![pdf.clone()]);
    assert_eq!(
        std::fs::read_to_string(pdf.join("SKILL.md")).unwrap(),
        "# pdf"
    );
    let mode = std::fs::metadata(pdf.join("scripts/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        std::fs::metadata(&skills_dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let leftovers: Vec<_> = std::fs::read_dir(&skills_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec!["pdf"], "the staging directory is gone");
    remove_installed(&installed);
    assert!(!pdf.exists());
    assert!(skills_dir.exists());
}

#[tokio::test]
async fn case_139_one_failure_does_not_stop_the_others() {
    let root = tempfile::tempdir().unwrap();
    let skills_dir = root.path().join("skills");
    std::fs::create_dir_all(skills_dir.join("broken")).unwrap();
    std::fs::write(skills_dir.join("broken/keep.txt"), "old").unwrap();
    let source = FakeSource {
        skills: vec![
            ("s_bad", "broken", None),
            ("s_zip", "pdf", Some(skill_zip())),
            ("s_junk", "junk", Some(b"nope".to_vec())),
        ],
        requests: Mutex::new(vec![]),
    };
    let refs = [
        skill_ref("s_missing"),
        skill_ref("s_bad"),
        skill_ref("s_junk"),
        skill_ref("s_zip"),
    ];
    let mut installed = Vec::new();
    download_all(&source, &refs, &skills_dir, &mut installed).await;
    assert_eq!(installed.len(), 1);
    assert!(skills_dir.join("pdf/SKILL.md").exists());
    assert_eq!(
        std::fs::read_to_string(skills_dir.join("broken/keep.txt")).unwrap(),
        "old"
    );
    assert!(!skills_dir.join("junk").exists());
    let names: Vec<_> = std::fs::read_dir(&skills_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "no staging leftovers: {names:?}");
}

#[test]
fn install_replaces_an_existing_copy() {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("pdf");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("stale.txt"), "x").unwrap();
    let work = root.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("archive"), skill_zip()).unwrap();
    install(&work.join("archive"), &work, &dest, &Limits::default()).unwrap();
    assert!(dest.join("SKILL.md").exists());
    assert!(!dest.join("stale.txt").exists());
}

/// A session that replaced `skills` with a link to a host directory must not make
/// the (more privileged) worker install into it or delete through it.
#[tokio::test]
async fn a_symlinked_skills_dir_is_never_followed() {
    let root = tempfile::tempdir().unwrap();
    let victim = root.path().join("victim");
    std::fs::create_dir_all(victim.join("pdf")).unwrap();
    std::fs::write(victim.join("pdf/keep.txt"), "host data").unwrap();
    let workspace = root.path().join("ws");
    std::fs::create_dir(&workspace).unwrap();
    let skills_dir = workspace.join("skills");
    std::os::unix::fs::symlink(&victim, &skills_dir).unwrap();
    let source = FakeSource {
        skills: vec![("skill_1", "pdf", Some(skill_zip()))],
        requests: Mutex::new(vec![]),
    };
    let mut installed = Vec::new();
    download_all(
        &source,
        &[skill_ref("skill_1")],
        &skills_dir,
        &mut installed,
    )
    .await;
    assert!(installed.is_empty(), "nothing installed through the link");
    assert_eq!(
        std::fs::read_to_string(victim.join("pdf/keep.txt")).unwrap(),
        "host data"
    );
    assert!(!victim.join("pdf/SKILL.md").exists());

    // Installed for real, then the link swapped in before removal: nothing is followed.
    std::fs::remove_file(&skills_dir).unwrap();
    download_all(
        &source,
        &[skill_ref("skill_1")],
        &skills_dir,
        &mut installed,
    )
    .await;
    assert_eq!(installed.len(), 1);
    let moved = workspace.join("skills-real");
    std::fs::rename(&skills_dir, &moved).unwrap();
    std::os::unix::fs::symlink(&victim, &skills_dir).unwrap();
    remove_installed(&installed);
    assert_eq!(
        std::fs::read_to_string(victim.join("pdf/keep.txt")).unwrap(),
        "host data"
    );
}
