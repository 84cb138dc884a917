//! Sandbox and tool-permission policy (`--policy FILE` plus flags).

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// Isolation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Host execution, path confinement only (the SDK's model). Must be chosen explicitly.
    None,
    /// One kernel sandbox per session (default on Linux).
    #[default]
    Process,
}

/// Network mode of the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Fresh network namespace with loopback only.
    #[default]
    Off,
    /// Share the host's network (explicit opt-in).
    Host,
    /// Reserved: per-session egress through an allowlisting proxy. Refused by
    /// validation until it exists, so a policy asking for it fails at start
    /// instead of running with a restriction that is silently inert.
    Allowlist,
}

/// The policy a worker applies to every session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub isolation: Isolation,
    pub network: Network,
    /// Tools this worker executes at all; others get an error naming the rule.
    pub allowed_tools: Vec<String>,
    /// Paths (relative to the workspace) that the tools and bash may not modify.
    pub read_only_paths: Vec<PathBuf>,
    /// Protected names inside the workspace, bound read-only even if missing or symlinks.
    pub protected_paths: Vec<PathBuf>,
    /// Environment variable names passed from the worker into the session.
    pub env_passthrough: Vec<String>,
    /// Upper bound on any call's timeout, in milliseconds.
    pub max_call_timeout_ms: Option<u64>,
    /// Memory limit per session, MiB.
    pub memory_mib: u64,
    /// Max processes per session.
    pub pids: u64,
    /// CPU quota in cores (e.g. 1.0).
    pub cpus: f64,
    /// Size of the session's `/tmp`, MiB.
    pub tmp_mib: u64,
    /// Extra read-only binds (host path, visible at the same path).
    pub ro_binds: Vec<PathBuf>,
    /// Extra read-write binds (host path, visible at the same path).
    pub rw_binds: Vec<PathBuf>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            isolation: Isolation::Process,
            network: Network::Off,
            allowed_tools: sandkeep_tools::TOOL_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            read_only_paths: Vec::new(),
            protected_paths: vec![PathBuf::from(".git/hooks"), PathBuf::from(".git/config")],
            env_passthrough: Vec::new(),
            max_call_timeout_ms: None,
            memory_mib: 1024,
            pids: 512,
            cpus: 1.0,
            tmp_mib: 256,
            ro_binds: Vec::new(),
            rw_binds: Vec::new(),
        }
    }
}

/// Every key a policy file may contain (shown when a key is unknown).
pub const POLICY_KEYS: &[&str] = &[
    "isolation",
    "network",
    "allowed_tools",
    "read_only_paths",
    "protected_paths",
    "env_passthrough",
    "max_call_timeout_ms",
    "memory_mib",
    "pids",
    "cpus",
    "tmp_mib",
    "ro_binds",
    "rw_binds",
];

/// Load a TOML policy (defaults when `path` is `None`) and validate it.
pub fn load_policy(path: Option<&Path>) -> anyhow::Result<Policy> {
    let Some(path) = path else {
        let policy = Policy::default();
        policy.validate()?;
        return Ok(policy);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading policy file {}", path.display()))?;
    let policy: Policy = toml::from_str(&text).map_err(|e| {
        let msg = e.message();
        // toml's own message already lists the expected keys; add them only if not.
        if msg.contains("unknown field") && !msg.contains("expected one of") {
            anyhow::anyhow!(
                "policy file {}: {msg}; valid keys are: {}",
                path.display(),
                POLICY_KEYS.join(", ")
            )
        } else {
            anyhow::anyhow!("policy file {}: {e}", path.display())
        }
    })?;
    policy
        .validate()
        .with_context(|| format!("policy file {}", path.display()))?;
    Ok(policy)
}

impl Policy {
    /// The network as sessions will really have it: under isolation `none` the
    /// `network` field is not enforced, so it is the host's.
    pub fn network_label(&self) -> String {
        match self.isolation {
            Isolation::None => "host (not isolated)".into(),
            Isolation::Process => format!("{:?}", self.network).to_lowercase(),
        }
    }

    /// Check values and referenced paths; the error names the key and the fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (key, v) in [
            ("memory_mib", self.memory_mib),
            ("pids", self.pids),
            ("tmp_mib", self.tmp_mib),
        ] {
            if v == 0 {
                bail!("`{key}` must be greater than 0");
            }
        }
        if !(self.cpus.is_finite() && self.cpus > 0.0) {
            bail!(
                "`cpus` must be a positive number of cores (e.g. 1.0), got {}",
                self.cpus
            );
        }
        if self.network == Network::Allowlist {
            bail!(
                "`network = \"allowlist\"` is not available in this version: there is no egress proxy \
                 to enforce it, and it would not be silently ignored. Use \"off\" (loopback only) \
                 or \"host\" (the host's network)"
            );
        }
        if self.max_call_timeout_ms == Some(0) {
            bail!("`max_call_timeout_ms` must be greater than 0 (omit it for no bound)");
        }
        for t in &self.allowed_tools {
            if !sandkeep_tools::TOOL_NAMES.contains(&t.as_str()) {
                bail!(
                    "`allowed_tools` contains unknown tool \"{t}\"; valid tools are: {}",
                    sandkeep_tools::TOOL_NAMES.join(", ")
                );
            }
        }
        for (key, list) in [
            ("protected_paths", &self.protected_paths),
            ("read_only_paths", &self.read_only_paths),
        ] {
            for p in list.iter() {
                let bad = p.is_absolute()
                    || p.as_os_str().is_empty()
                    || p.components().any(|c| !matches!(c, Component::Normal(_)));
                if bad {
                    bail!("`{key}` entry {:?} must be a plain path relative to the workspace (no `..`, not absolute)", p.display().to_string());
                }
            }
        }
        for (key, list) in [("ro_binds", &self.ro_binds), ("rw_binds", &self.rw_binds)] {
            for p in list.iter() {
                if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
                    bail!(
                        "`{key}` entry {} must be an absolute path without `..`",
                        p.display()
                    );
                }
                if !p.exists() {
                    bail!("`{key}` entry {} does not exist on this host; create it or remove the entry", p.display());
                }
            }
        }
        // A writable bind of the root or a system tree would hand the host to the
        // session: refuse it (read-only binds of them are harmless).
        const SYSTEM: [&str; 12] = [
            "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/sbin",
            "/sys", "/usr",
        ];
        for p in &self.rw_binds {
            let risky = SYSTEM
                .iter()
                .any(|sys| p == Path::new(sys) || Path::new(sys).starts_with(p));
            if risky || p.starts_with("/proc") || p.starts_with("/sys") || p.starts_with("/etc") {
                bail!(
                    "`rw_binds` entry {} would give sessions write access to the host's system files; \
                     bind a narrower directory (or use `ro_binds`)",
                    p.display()
                );
            }
        }
        for name in &self.env_passthrough {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                bail!(
                    "`env_passthrough` entry \"{name}\" is not a valid environment variable name"
                );
            }
            if name.starts_with("ANTHROPIC_") {
                bail!("`env_passthrough` may not pass \"{name}\": ANTHROPIC_* variables never enter a session");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Load from text; errors are rendered with their whole context chain.
    fn load(text: &str) -> Result<Policy, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, text).unwrap();
        load_policy(Some(&path)).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn keys_list_matches_the_struct() {
        let value = toml::Value::try_from(Policy {
            max_call_timeout_ms: Some(1),
            ..Policy::default()
        })
        .unwrap();
        let mut keys: Vec<&str> = value
            .as_table()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        let mut expected = POLICY_KEYS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }

    #[test]
    fn unknown_key_lists_valid_keys() {
        let err = load("memroy_mib = 5\n").unwrap_err().to_string();
        assert!(
            err.contains("memroy_mib")
                && (err.contains("valid keys are: isolation")
                    || err.contains("expected one of `isolation`")),
            "{err}"
        );
    }

    #[test]
    fn allowlist_network_is_refused_not_inert() {
        let err = load("network = \"allowlist\"\n").unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("allowlist") && text.contains("\"off\""),
            "{text}"
        );
    }

    #[test]
    fn writable_binds_of_system_trees_are_refused() {
        for path in ["/", "/usr", "/etc/ssh"] {
            let err = load(&format!("rw_binds = [\"{path}\"]\n")).unwrap_err();
            assert!(
                format!("{err:#}").contains("system files"),
                "{path}: {err:#}"
            );
        }
        assert!(load("ro_binds = [\"/usr\"]\n").is_ok());
        assert!(load("rw_binds = [\"/tmp\"]\n").is_ok());
    }

    #[test]
    fn bad_values_are_named() {
        assert!(load("pids = 0\n")
            .unwrap_err()
            .to_string()
            .contains("`pids`"));
        assert!(load("allowed_tools = [\"bsh\"]\n")
            .unwrap_err()
            .to_string()
            .contains("bsh"));
        let err = load("ro_binds = [\"/definitely/not/here\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/definitely/not/here"), "{err}");
        assert!(load("protected_paths = [\"../x\"]\n").is_err());
        assert!(load("env_passthrough = [\"ANTHROPIC_API_KEY\"]\n").is_err());
        let ok = load("isolation = \"none\"\nmemory_mib = 64\n").unwrap();
        assert_eq!((ok.isolation, ok.memory_mib), (Isolation::None, 64));
    }
}
