//! §4 cases 4, 5, 6 and 8: loopback works inside the fresh network namespace,
//! nothing else is reachable whatever the client or flags, and a network mode
//! the worker cannot enforce is a configuration error at start.

use crate::common::process::run_to_exit;
use crate::rig::Rig;
use std::time::Duration;

#[tokio::test]
async fn case04_06_08_loopback_only() {
    let Some(mut rig) = Rig::new("case04_06_08").await else {
        return;
    };
    rig.start_worker(&[]);
    let s = rig.session().await;

    // The namespace has loopback and nothing else: no other interface, no route.
    let interfaces = s.ok("tail -n +3 /proc/net/dev | cut -d: -f1").await;
    assert_eq!(interfaces.trim(), "lo", "interfaces inside the sandbox");
    let routes = s.ok("tail -n +2 /proc/net/route | wc -l").await;
    assert_eq!(routes.trim(), "0", "IPv4 routes inside the sandbox");
    let v6 = s
        .ok("grep -v ' lo$' /proc/net/ipv6_route 2>/dev/null | wc -l")
        .await;
    assert_eq!(
        v6.trim(),
        "0",
        "non-loopback IPv6 routes inside the sandbox"
    );

    // Case 4: loopback is up and usable.
    assert!(s.ok("ip -o addr show lo").await.contains("127.0.0.1"));
    let has_python = s.has("python3").await;
    let has_curl = s.has("curl").await;
    if has_python && has_curl {
        let out = s
            .ok("python3 -m http.server 18080 --bind 127.0.0.1 >/dev/null 2>&1 & \
                 for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18080/ && break; sleep 0.05; done; \
                 curl -s -o /dev/null -w 'http=%{http_code}\\n' http://127.0.0.1:18080/; \
                 exec 3<>/dev/tcp/127.0.0.1/18080 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3")
            .await;
        assert!(
            out.contains("http=200") && out.contains("HTTP/1.0 200"),
            "{out}"
        );
    }

    // Cases 6 and 8: names fail at resolution, addresses at connect, at once.
    let mut by_name = vec![
        "getent hosts example.com".to_string(),
        "exec 3<>/dev/tcp/example.com/443".to_string(),
    ];
    let mut by_address = vec![
        "exec 3<>/dev/tcp/1.1.1.1/443".to_string(),
        "exec 3<>/dev/tcp/93.184.215.14/80".to_string(),
    ];
    if has_curl {
        by_name.extend(
            [
                "curl -sS --max-time 5 https://example.com",
                "sh -c 'curl -sS --max-time 5 https://example.com'",
                "curl -sSk --insecure --max-time 5 https://example.com",
            ]
            .map(String::from),
        );
        by_address.extend(
            [
                "curl -sSvk --max-time 5 https://1.1.1.1/",
                "sh -c 'curl -sSv --max-time 5 http://93.184.215.14/'",
                "curl -sSvk -g --max-time 5 'https://[2606:4700::1111]/'",
                "HTTPS_PROXY=http://10.1.2.3:3128 curl -sSvk --max-time 5 https://1.1.1.1/",
            ]
            .map(String::from),
        );
    }
    if has_python {
        for target in ["('1.1.1.1', 443)", "('2606:4700::1111', 443)"] {
            by_address.push(format!(
                "python3 -c \"import socket; socket.create_connection({target}, timeout=5)\""
            ));
        }
        by_address.push(
            "python3 -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('1.1.1.1', 53))\""
                .to_string(),
        );
    }
    for cmd in &by_name {
        let out = s.bash(cmd).await;
        assert!(out.is_error, "`{cmd}` reached the network: {}", out.text);
        assert!(
            out.elapsed < Duration::from_secs(4),
            "`{cmd}` took {:?}",
            out.elapsed
        );
        let text = out.text.to_lowercase();
        assert!(
            text.contains("resolve")
                || text.contains("name or service not known")
                || text.contains("temporary failure in name resolution")
                || out.text.trim() == "(no output)"
                || text.contains("unreachable"),
            "`{cmd}` failed, but not at name resolution: {}",
            out.text
        );
    }
    for cmd in &by_address {
        let out = s.bash(cmd).await;
        assert!(out.is_error, "`{cmd}` reached the network: {}", out.text);
        assert!(
            out.text.to_lowercase().contains("network is unreachable"),
            "`{cmd}` did not fail with ENETUNREACH: {}",
            out.text
        );
        assert!(
            out.elapsed < Duration::from_secs(4),
            "`{cmd}` took {:?}",
            out.elapsed
        );
    }
    rig.finish().await;
}

/// A policy asking for `network = "allowlist"` (not implemented yet) must stop
/// the worker at start, naming the problem — never run with the network silently
/// off or on.
#[tokio::test]
async fn case05_unenforceable_network_policy_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "network = \"allowlist\"\n").unwrap();
    let policy = policy.display().to_string();
    let workdir = dir.path().display().to_string();
    let env = [("ANTHROPIC_ENVIRONMENT_KEY", "sk-env-case05")];
    let poll = [
        "worker",
        "poll",
        "--environment-id",
        "env_case05",
        "--base-url",
        // Nothing listens here: a worker that got past its config would retry forever.
        "http://127.0.0.1:9",
        "--workdir",
        &workdir,
        "--policy",
        &policy,
    ];
    for args in [&poll[..], &["doctor", "--policy", &policy][..]] {
        let (status, stdout, stderr) = run_to_exit(args, &env, Duration::from_secs(15)).await;
        let all = format!("{stdout}\n{stderr}");
        assert!(
            !status.success(),
            "`sandkeep {}` accepted network = allowlist: {all}",
            args[0]
        );
        assert!(
            all.contains("network") && all.contains("allowlist"),
            "`sandkeep {}` failed without naming the network setting: {all}",
            args[0]
        );
        assert!(!all.contains("sk-env-case05"), "the key was printed: {all}");
    }
    let (status, _, stderr) = run_to_exit(
        &["worker", "poll", "--network", "allowlist"],
        &env,
        Duration::from_secs(15),
    )
    .await;
    assert!(
        !status.success() && stderr.contains("allowlist"),
        "{stderr}"
    );
}
