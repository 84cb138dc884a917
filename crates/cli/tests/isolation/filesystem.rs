//! §4 cases 1, 2 and 9–14: protected and read-only paths, host system paths and
//! relative escapes, for bash and for the file tools (which must obey the same
//! kernel-enforced policy because they run inside the sandbox).

use crate::common::{call, one_turn};
use crate::host::snapshot;
use crate::rig::{is_denial, Rig};
use serde_json::json;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::time::Duration;

/// Host files the sandbox must not change.
const HOST_FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/profile",
    "/etc/bash.bashrc",
    "/root/.bashrc",
    "/root/.profile",
];

#[tokio::test]
async fn case01_02_14_protected_symlinks_and_linked_subdirs() {
    let Some(mut rig) = Rig::new("case01_02_14").await else {
        return;
    };
    let sid = rig.create_session().await;
    let ws = rig.prepare_workspace(&sid);
    // An outside directory anyone may write: only the sandbox's mask stops writes.
    let outside = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::create_dir_all(ws.join("hooksdir")).unwrap();
    std::fs::create_dir_all(ws.join(".git")).unwrap();
    symlink("../hooksdir", ws.join(".git/hooks")).unwrap(); // case 1
    symlink(outside.path(), ws.join(".git/config")).unwrap(); // case 2
    std::fs::create_dir_all(ws.join("real/sub")).unwrap();
    symlink("real/sub", ws.join("linked")).unwrap(); // case 14
    rig.start_worker(&[]);
    let s = rig.attach(&sid);

    // Setup worked and commands run.
    assert_eq!(s.ok("echo up").await.trim(), "up");
    for cmd in [
        "echo x > .git/hooks/pre-commit",
        "echo x > hooksdir/pre-commit",
        "echo x > .git/config/y",
        "echo x > .git/config",
    ] {
        s.fails(cmd).await;
    }
    for path in [
        ".git/hooks/pre-commit",
        "hooksdir/pre-commit",
        ".git/config/y",
    ] {
        s.tool_fails("write", json!({"file_path": path, "content": "x"}))
            .await;
    }
    assert!(std::fs::read_dir(ws.join("hooksdir"))
        .unwrap()
        .next()
        .is_none());
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "something was written through the protected symlink to the outside"
    );

    // Case 14: a legitimate symlinked subdirectory stays writable, for every tool.
    let out = s
        .call(
            "write",
            json!({"file_path": "linked/a.txt", "content": "hello\n"}),
        )
        .await;
    assert!(!out.is_error, "{}", out.text);
    s.ok("echo more >> linked/a.txt").await;
    let out = s
        .call(
            "edit",
            json!({"file_path": "linked/a.txt", "old_string": "hello", "new_string": "HELLO"}),
        )
        .await;
    assert!(!out.is_error, "{}", out.text);
    let out = s.call("read", json!({"file_path": "linked/a.txt"})).await;
    assert!(
        !out.is_error && out.text.contains("HELLO") && out.text.contains("more"),
        "{}",
        out.text
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("real/sub/a.txt")).unwrap(),
        "HELLO\nmore\n"
    );
    s.ok("echo fine > other.txt").await;
    rig.finish().await;
}

/// Replacing a protected path instead of writing into it: unlinking or renaming
/// the protected symlink, or renaming its parent directory, and recreating the
/// name as a plain directory.
#[tokio::test]
async fn case01_02_protected_paths_cannot_be_replaced() {
    let Some(mut rig) = Rig::new("case01_02_replace").await else {
        return;
    };
    let linked = rig.create_session().await;
    let ws = rig.prepare_workspace(&linked);
    std::fs::create_dir_all(ws.join("hooksdir")).unwrap();
    std::fs::create_dir_all(ws.join(".git")).unwrap();
    symlink("../hooksdir", ws.join(".git/hooks")).unwrap();
    rig.start_worker(&[]);
    let s = rig.attach(&linked);
    s.fails("rm .git/hooks").await;
    s.fails("mv .git/hooks .git/hooks.old").await;
    s.fails("rm -f .git/hooks; mkdir -p .git/hooks && echo x > .git/hooks/pre-commit")
        .await;
    assert!(!ws.join(".git/hooks/pre-commit").exists());
    // Default protections on a workspace without .git: rename the parent away.
    let plain = rig.session().await;
    plain
        .fails("mv .git .git.old; mkdir -p .git/hooks && echo x > .git/hooks/pre-commit")
        .await;
    plain
        .fails("mv .git .git.old2; mkdir -p .git && echo '[core]' > .git/config")
        .await;
    let plain_ws = rig.workspace(&plain.id);
    assert!(!plain_ws.join(".git/hooks/pre-commit").exists());
    assert!(
        !plain_ws.join(".git/config").is_file()
            || std::fs::read(plain_ws.join(".git/config"))
                .unwrap()
                .is_empty()
    );
    rig.finish().await;
}

/// Policy with read-only paths, and a workspace that has them (both sessions).
fn plant(rig: &Rig, sid: &str) -> std::path::PathBuf {
    let ws = rig.prepare_workspace(sid);
    std::fs::create_dir_all(ws.join("ro")).unwrap();
    std::fs::create_dir_all(ws.join("data")).unwrap();
    std::fs::write(ws.join("data/secret.txt"), "keep").unwrap();
    std::fs::write(ws.join("ro/kept.txt"), "ro-keep").unwrap();
    // `../outside/.env` seen from the workspace on the host.
    let outside = ws.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(outside.join(".env"), "OUTSIDE=1\n").unwrap();
    std::fs::set_permissions(outside.join(".env"), std::fs::Permissions::from_mode(0o666)).unwrap();
    ws
}

/// File-tool calls that must fail under the policy (case 13).
fn forbidden_file_calls() -> Vec<serde_json::Value> {
    let fails = json!({"is_error": true});
    let write = |path: &str| json!({"file_path": path, "content": "pwned\n"});
    vec![
        call("write", write("/etc/passwd"), fails.clone()),
        call("write", write("/usr/bin/x"), fails.clone()),
        call("write", write("/home/x"), fails.clone()),
        call("write", write("/root/.bashrc"), fails.clone()),
        call("write", write("ro/x.txt"), fails.clone()),
        call("write", write("ro/kept.txt"), fails.clone()),
        call("write", write("data/secret.txt"), fails.clone()),
        call("write", write("../outside/.env"), fails.clone()),
        call("write", write("/workspace/../outside/.env"), fails.clone()),
        call("write", write(".git/hooks/pre-commit"), fails.clone()),
        call(
            "edit",
            json!({"file_path": "data/secret.txt", "old_string": "keep", "new_string": "gone"}),
            fails.clone(),
        ),
        call(
            "edit",
            json!({"file_path": "ro/kept.txt", "old_string": "ro-keep", "new_string": "gone"}),
            fails.clone(),
        ),
        call(
            "edit",
            json!({"file_path": "/etc/passwd", "old_string": "root", "new_string": "toor"}),
            fails.clone(),
        ),
        // The same policy for bash in the same session.
        call("bash", json!({"command": "echo x > ro/y"}), fails.clone()),
        call(
            "bash",
            json!({"command": "echo x > data/secret.txt"}),
            fails,
        ),
    ]
}

#[tokio::test]
async fn case09_to_13_read_only_paths_host_paths_and_escapes() {
    let Some(mut rig) = Rig::new("case09_13").await else {
        return;
    };
    let before: Vec<_> = HOST_FILES.iter().map(|p| snapshot(p)).collect();
    let sid = rig.create_session().await;
    let ws = plant(&rig, &sid);
    // Case 13 runs as a scenario session on the same worker (kept open until
    // `finish`, so its workspace can be inspected).
    let mut steps: Vec<Vec<serde_json::Value>> = forbidden_file_calls()
        .into_iter()
        .map(|c| vec![c])
        .collect();
    steps.push(vec![call(
        "write",
        json!({"file_path": "data/other.txt", "content": "allowed"}),
        json!({"is_error": false}),
    )]);
    steps.push(vec![call(
        "edit",
        json!({"file_path": "data/other.txt", "old_string": "allowed", "new_string": "edited"}),
        json!({"is_error": false}),
    )]);
    let scenario_sid = rig.scenario_session(one_turn(steps)).await;
    let scenario_ws = plant(&rig, &scenario_sid);
    let policy = rig.dir.path().join("policy.toml");
    std::fs::write(&policy, "read_only_paths = [\"ro\", \"data/secret.txt\"]\n").unwrap();
    rig.start_worker(&["--policy", &policy.display().to_string()]);
    let s = rig.attach(&sid);

    let mut not_found = Vec::new();
    for cmd in [
        // Case 9: read-only directory, also through tmpfs and bind tricks.
        "echo x > ro/new",
        "mount -t tmpfs none ro",
        "mkdir -p /tmp/t && mount --bind /tmp/t ro",
        "mount -o remount,rw ro",
        // Case 10: a denied file inside an allowed directory.
        "echo x > data/secret.txt",
        "rm data/secret.txt",
        "mv data/secret.txt data/moved.txt",
        // Case 11: dotfiles outside the workspace, relative escapes.
        "echo x > ../outside/.env",
        "mkdir -p ../outside && echo x > ../outside/.env",
        "echo x > ~/../outside/.env",
        "echo x >> /root/.bashrc",
        "echo x >> /etc/bash.bashrc",
        "echo x >> /etc/profile",
        "echo x > /.profile",
        // Case 12: host system paths.
        "touch /home/x",
        "echo x > /etc/passwd",
        "echo x > /usr/bin/x",
        "echo x > /bin/x",
    ] {
        let text = s.fails(cmd).await;
        if !is_denial(&text) {
            assert!(
                text.contains("No such file or directory") || text.contains("busy"),
                "`{cmd}` failed, but not with EROFS/EACCES/EPERM: {text}"
            );
            not_found.push(format!("{cmd}: {}", text.trim()));
        }
    }
    if !not_found.is_empty() {
        println!("NOTE case09_13: failed with ENOENT/EBUSY rather than EROFS/EACCES (the path does not exist or is a mount point inside):\n  {}", not_found.join("\n  "));
    }
    // Deny-inside-allow: the rest of the directory stays writable.
    s.ok("echo x > data/other.txt && cat ro/kept.txt").await;
    let state = rig
        .emulator
        .wait_scenario_passed(&scenario_sid, Duration::from_secs(30))
        .await;
    for result in state["results"].as_array().into_iter().flatten() {
        if result["is_error"] == true {
            println!(
                "case13 {} → {}",
                result["name"],
                result["output"]
                    .to_string()
                    .chars()
                    .take(120)
                    .collect::<String>()
            );
        }
    }

    // The host is unchanged.
    for (path, was) in HOST_FILES.iter().zip(&before) {
        assert_eq!(&snapshot(path), was, "{path} changed on the host");
    }
    for path in ["/usr/bin/x", "/bin/x", "/home/x", "/.profile"] {
        assert!(!std::path::Path::new(path).exists(), "{path} was created");
    }
    for w in [&ws, &scenario_ws] {
        assert_eq!(
            std::fs::read_to_string(w.join("data/secret.txt")).unwrap(),
            "keep"
        );
        assert_eq!(
            std::fs::read_to_string(w.join("ro/kept.txt")).unwrap(),
            "ro-keep"
        );
        assert_eq!(std::fs::read_dir(w.join("ro")).unwrap().count(), 1);
        let env = w.parent().unwrap().join("outside/.env");
        assert_eq!(std::fs::read_to_string(env).unwrap(), "OUTSIDE=1\n");
    }
    rig.finish().await;
}
