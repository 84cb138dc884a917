//! Extraction tests (protocol.md §12.6 cases 133–136 plus limits).

use super::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use zip::write::SimpleFileOptions;

/// `(name, contents, mode)`; a name ending in `/` is a directory.
type Member<'a> = (&'a str, &'a str, u32);

fn build_zip(members: &[Member]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    for (name, body, mode) in members {
        let options = SimpleFileOptions::default().unix_permissions(*mode);
        if name.ends_with('/') {
            writer.add_directory(*name, options).unwrap();
        } else {
            writer.start_file(*name, options).unwrap();
            writer.write_all(body.as_bytes()).unwrap();
        }
    }
    writer.finish().unwrap().into_inner()
}

/// Rewrite every central-directory record's "made by" host and external attributes
/// (the zip writer cannot produce DOS entries or setuid bits).
fn patch_central(mut bytes: Vec<u8>, host: u8, external: u32) -> Vec<u8> {
    let mut i = 0;
    while i + 46 <= bytes.len() {
        if bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] {
            bytes[i + 5] = host;
            bytes[i + 38..i + 42].copy_from_slice(&external.to_le_bytes());
            i += 46;
        } else {
            i += 1;
        }
    }
    bytes
}

fn build_tar(members: &[Member], symlink: Option<(&str, &str)>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, body, mode) in members {
        let mut header = tar::Header::new_gnu();
        if name.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(body.len() as u64);
        }
        header.set_mode(*mode);
        // set_path refuses `..`, so write the raw name bytes for hostile members.
        let raw = &mut header.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, body.as_bytes()).unwrap();
    }
    if let Some((name, target)) = symlink {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, name, target).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn run(bytes: &[u8]) -> (tempfile::TempDir, Result<(), ExtractError>) {
    run_with(bytes, &Limits::default())
}

fn run_with(bytes: &[u8], limits: &Limits) -> (tempfile::TempDir, Result<(), ExtractError>) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    fs::write(&archive, bytes).unwrap();
    let root = dir.path().join("stage");
    fs::create_dir(&root).unwrap();
    let result = extract(&archive, &root, limits);
    (dir, result)
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

const WRAPPED: &[Member] = &[
    ("pdf/SKILL.md", "# pdf", 0o644),
    ("pdf/scripts/run.py", "print(1)", 0o755),
];

#[test]
fn zip_wrapper_is_stripped() {
    let (dir, result) = run(&build_zip(WRAPPED));
    result.unwrap();
    let stage = dir.path().join("stage");
    assert_eq!(fs::read_to_string(stage.join("SKILL.md")).unwrap(), "# pdf");
    assert_eq!(
        fs::read_to_string(stage.join("scripts/run.py")).unwrap(),
        "print(1)"
    );
    assert!(!stage.join("pdf").exists());
}

#[test]
fn tar_gz_wrapper_is_stripped() {
    let (dir, result) = run(&gzip(&build_tar(WRAPPED, None)));
    result.unwrap();
    let stage = dir.path().join("stage");
    assert!(stage.join("SKILL.md").is_file());
    assert!(stage.join("scripts/run.py").is_file());
    assert!(!stage.join("pdf").exists());
}

#[test]
fn tar_bz2_and_xz_are_read() {
    let plain = build_tar(WRAPPED, None);
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&plain).unwrap();
    let (dir, result) = run(&bz.finish().unwrap());
    result.unwrap();
    assert!(dir.path().join("stage/SKILL.md").is_file());
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&plain).unwrap();
    let (dir, result) = run(&xz.finish().unwrap());
    result.unwrap();
    assert!(dir.path().join("stage/scripts/run.py").is_file());
}

#[test]
fn flat_archive_is_unchanged() {
    let flat: &[Member] = &[("SKILL.md", "x", 0o644), ("scripts/x.py", "y", 0o644)];
    let (dir, result) = run(&build_zip(flat));
    result.unwrap();
    assert!(dir.path().join("stage/SKILL.md").is_file());
    assert!(dir.path().join("stage/scripts/x.py").is_file());
    let (dir, result) = run(&build_tar(flat, None));
    result.unwrap();
    assert!(dir.path().join("stage/scripts/x.py").is_file());
}

#[test]
fn zip_slip_is_refused() {
    let members: &[Member] = &[("ok.txt", "fine", 0o644), ("../escape.txt", "bad", 0o644)];
    let (dir, result) = run(&build_zip(members));
    assert_eq!(
        result.unwrap_err().to_string(),
        "refusing archive member with '..' component: '../escape.txt'"
    );
    assert!(!dir.path().join("escape.txt").exists());
    assert!(
        !dir.path().join("stage/ok.txt").exists(),
        "screening happens before anything is written"
    );
    let (dir, result) = run(&build_tar(members, None));
    assert!(result.unwrap_err().to_string().contains("'..' component"));
    assert!(!dir.path().join("escape.txt").exists());
}

#[test]
fn absolute_member_is_refused() {
    let (_dir, result) = run(&build_tar(&[("/etc/evil", "x", 0o644)], None));
    assert_eq!(
        result.unwrap_err().to_string(),
        "refusing archive member with absolute path '/etc/evil'"
    );
}

#[test]
fn modes_are_normalised() {
    let members: &[Member] = &[
        ("run.sh", "#!/bin/sh", 0o755),
        ("data.txt", "d", 0o644),
        ("odd", "o", 0o7775),
    ];
    let (dir, result) = run(&build_tar(members, None));
    result.unwrap();
    let stage = dir.path().join("stage");
    assert_eq!(mode_of(&stage.join("run.sh")), 0o755);
    assert_eq!(mode_of(&stage.join("data.txt")), 0o644);
    assert_eq!(mode_of(&stage.join("odd")), 0o755);
    let (dir, result) = run(&build_zip(&members[..2]));
    result.unwrap();
    assert_eq!(mode_of(&dir.path().join("stage/run.sh")), 0o755);
    assert_eq!(mode_of(&dir.path().join("stage/data.txt")), 0o644);
}

#[test]
fn zip_setuid_and_dos_entries() {
    let one: &[Member] = &[("tool", "t", 0o755)];
    let setuid = patch_central(build_zip(one), 3, (0o104_755) << 16);
    let (dir, result) = run(&setuid);
    result.unwrap();
    assert_eq!(mode_of(&dir.path().join("stage/tool")), 0o755);
    let sticky = patch_central(build_zip(one), 3, (0o101_644) << 16);
    let (dir, result) = run(&sticky);
    result.unwrap();
    assert_eq!(mode_of(&dir.path().join("stage/tool")), 0o644);
    let dos = patch_central(build_zip(one), 0, 0);
    let (dir, result) = run(&dos);
    result.unwrap();
    assert_eq!(mode_of(&dir.path().join("stage/tool")), 0o644);
}

#[test]
fn links_and_special_members_are_skipped() {
    let (dir, result) = run(&build_tar(
        &[("SKILL.md", "x", 0o644)],
        Some(("link", "/etc/passwd")),
    ));
    result.unwrap();
    assert!(fs::symlink_metadata(dir.path().join("stage/link")).is_err());
    let mut writer = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    writer
        .start_file("SKILL.md", SimpleFileOptions::default())
        .unwrap();
    writer.write_all(b"x").unwrap();
    writer
        .add_symlink("link", "/etc/passwd", SimpleFileOptions::default())
        .unwrap();
    let (dir, result) = run(&writer.finish().unwrap().into_inner());
    result.unwrap();
    assert!(fs::symlink_metadata(dir.path().join("stage/link")).is_err());
    assert!(dir.path().join("stage/SKILL.md").is_file());
}

#[test]
fn symlinked_directory_on_disk_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("stage");
    fs::create_dir(&root).unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("sub")).unwrap();
    let archive = dir.path().join("archive");
    fs::write(
        &archive,
        build_zip(&[("sub/x.txt", "x", 0o644), ("y.txt", "y", 0o644)]),
    )
    .unwrap();
    let err = extract(&archive, &root, &Limits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "refusing to extract unsafe zip member 'sub/x.txt'"
    );
    assert!(!outside.join("x.txt").exists());
}

#[test]
fn limits_guard_size_and_member_count() {
    let big = "a".repeat(4096);
    let members: Vec<Member> = vec![("a", &big, 0o644), ("b", &big, 0o644)];
    let small = Limits {
        max_total_bytes: 6000,
        max_members: 10,
    };
    let (_dir, result) = run_with(&build_zip(&members), &small);
    assert!(result.unwrap_err().to_string().contains("size limit"));
    let (_dir, result) = run_with(&build_tar(&members, None), &small);
    assert!(result.unwrap_err().to_string().contains("size limit"));
    let few = Limits {
        max_total_bytes: 1 << 20,
        max_members: 1,
    };
    let (_dir, result) = run_with(&build_zip(&members), &few);
    assert!(result
        .unwrap_err()
        .to_string()
        .contains("more than 1 members"));
    let (_dir, result) = run_with(&build_tar(&members, None), &few);
    assert!(result
        .unwrap_err()
        .to_string()
        .contains("more than 1 members"));
}

#[test]
fn garbage_and_empty_files_fail() {
    let (_dir, result) = run(b"");
    assert!(result.unwrap_err().to_string().contains("empty"));
    let (_dir, result) = run(&[7u8; 1024]);
    assert!(result.is_err());
}
