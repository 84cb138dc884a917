//! §4 case 18: none of the worker's credentials (canaries planted in its
//! environment, and the real environment key) is visible inside the sandbox — not
//! in any process's environment or argv, not in any file the session can reach,
//! and not through the file tools.

use crate::rig::Rig;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Names that must not appear in a session's environment either.
const CREDENTIAL_NAMES: &[&str] = &["ANTHROPIC_", "AWS_SECRET", "SSH_AUTH_SOCK"];

#[tokio::test]
async fn case18_no_credentials_inside() {
    let Some(mut rig) = Rig::new("case18").await else {
        return;
    };
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    rig.start_worker(&[]);
    let s = rig.session().await;
    let secrets = rig.secrets();
    let check = |what: &str, text: &str| {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} showed a secret ({}…): {text}",
                &secret[..8]
            );
        }
        for name in CREDENTIAL_NAMES {
            assert!(!text.contains(name), "{what} showed {name}: {text}");
        }
    };

    for cmd in [
        "env",
        "tr '\\0' '\\n' < /proc/1/environ",
        "tr '\\0' '\\n' < /proc/self/environ",
        "cat /proc/*/environ | tr '\\0' '\\n'",
        "cat /proc/*/cmdline | tr '\\0' ' '",
        "ps auxeww",
        "ls -la /tmp /workspace /run /var/run 2>&1",
    ] {
        let out = s.bash(cmd).await;
        check(&format!("`{cmd}`"), &out.text);
    }
    for (tool, input) in [
        ("read", json!({"file_path": "/proc/1/environ"})),
        ("read", json!({"file_path": "/proc/self/environ"})),
        (
            "grep",
            json!({"pattern": "canary|ANTHROPIC|AWS_SEC|SSH_AUTH", "path": "/proc/1/environ"}),
        ),
        (
            "grep",
            json!({"pattern": "canary|ANTHROPIC|AWS_SEC|SSH_AUTH", "path": "/proc/self/environ"}),
        ),
        ("glob", json!({"pattern": "*canary*", "path": "/tmp"})),
    ] {
        let out = s.call(tool, input.clone()).await;
        check(&format!("{tool} {input}"), &out.text);
    }

    // Every file the session can reach. The patterns are built by the shell so the
    // command itself does not spell a secret. /usr is the host's read-only tree
    // (5 GB here): a fresh canary can only be in a file changed since the worker
    // started, so it is searched by mtime instead of byte by byte.
    let key = &rig.setup.env_key;
    let (head, tail) = key.split_at(key.len() / 2);
    let patterns = format!("-e {} -e '{head}''{tail}'", rig.canaries.shell_pattern());
    let scan = format!(
        "grep -rsl {patterns} / --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr; \
         find /usr -xdev -type f -newermt @{since} -print0 2>/dev/null | xargs -0r grep -sl {patterns}; \
         echo scan-done"
    );
    // Control: the scan finds both kinds of secret when they are there.
    let control = format!(
        "printf %s {} > /tmp/control-canary; printf %s '{head}''{tail}' > /workspace/control-key; {scan}; rm /tmp/control-canary /workspace/control-key",
        rig.canaries.shell_pattern()
    );
    let out = s
        .call("bash", json!({"command": control, "timeout_ms": 60_000}))
        .await;
    assert!(
        out.text.contains("/tmp/control-canary") && out.text.contains("/workspace/control-key"),
        "the scan does not find planted secrets: {}",
        out.text
    );
    let out = s
        .call("bash", json!({"command": scan, "timeout_ms": 60_000}))
        .await;
    println!("case18: file scan took {:?}", out.elapsed);
    assert_eq!(
        out.text.trim(),
        "scan-done",
        "files inside the sandbox hold a secret (or the scan failed): {}",
        out.text
    );
    assert!(out.elapsed < Duration::from_secs(60));
    rig.finish().await;
}
