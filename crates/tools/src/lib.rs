//! The `agent_toolset_20260401` tools: `bash`, `read`, `write`, `edit`, `glob`, `grep`
//! (protocol.md §9).
//!
//! Everything here is synchronous and host-agnostic, so one implementation serves
//! both isolation levels: with `--isolation none` the worker calls a [`Toolset`] on a
//! dedicated thread; with `process` the sandbox's init (PID 1 of the session) calls
//! the same [`Toolset`] inside the session's namespaces, Landlock and seccomp. There
//! is no global state and no thread outlives a call.
//!
//! Error texts follow the spec byte for byte; deviations from the SDK are listed in
//! `docs/notes/tools-compat.md`.

mod bash;
mod edit;
mod fserr;
mod glob;
mod grep;
mod grep_search;
mod input;
pub mod output;
mod paths;
pub mod pyrepr;
mod read;
mod write;

pub use output::ToolOutput;

use serde_json::Value;
use std::path::PathBuf;
use std::time::Instant;

/// Tool names, in the SDK's registration order (§9).
pub const TOOL_NAMES: [&str; 6] = ["bash", "read", "write", "edit", "glob", "grep"];

/// Default text cap of `read`/`edit` (§9.4): 256 KiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 262_144;
/// Default image cap of `read`, in base64 bytes (§9.4): 5 MiB.
pub const DEFAULT_MAX_IMAGE_BASE64_BYTES: u64 = 5_242_880;
/// Default PDF cap of `read`, in raw bytes (§9.4): 20 MiB.
pub const DEFAULT_MAX_PDF_BYTES: u64 = 20_971_520;

/// Per-session configuration of the toolset.
#[derive(Clone)]
pub struct ToolConfig {
    /// The session working directory, as the tools see it (inside a sandbox this is
    /// `/workspace`). Relative paths resolve against its canonical form.
    pub workdir: PathBuf,
    /// Further roots the file tools may touch (§9.2 rule 5).
    pub allowed_roots: Vec<PathBuf>,
    /// Roots that `write`/`edit` refuse (§9.2 "Read-only roots").
    pub read_only_roots: Vec<PathBuf>,
    /// Text cap for `read`/`edit`; `None` = uncapped.
    pub max_file_bytes: Option<u64>,
    /// Whether `max_file_bytes` was set explicitly by the operator; the SDK then
    /// also caps images/PDFs with it (§9.4 step 4). The default cap does not.
    pub text_cap_applies_to_media: bool,
    /// Image cap of `read` in base64 bytes; `None` = no image cap.
    pub max_image_base64_bytes: Option<u64>,
    /// PDF cap of `read` in raw bytes; `None` = no PDF cap.
    pub max_pdf_bytes: Option<u64>,
    /// The complete environment of the bash shell (already scrubbed by the caller).
    /// The toolset still drops `ANTHROPIC_*` and sets `PS1=""`, `PS2=""`, `TERM=dumb`.
    pub shell_env: Vec<(String, String)>,
    /// Shell binary; the spec requires exactly `/bin/bash`.
    pub bash_path: PathBuf,
    /// Upper bound on any bash `timeout_ms` (policy), if set.
    pub max_bash_timeout: Option<std::time::Duration>,
    /// Called after the shell's process group was killed (timeout, cancellation,
    /// restart, close). Inside the sandbox init this kills every other process of
    /// the session's pid namespace, so nothing a call started survives it.
    pub after_shell_kill: Option<fn()>,
}

impl ToolConfig {
    /// Defaults of the SDK for a given workdir; the environment is the current
    /// process's, minus `ANTHROPIC_*`.
    pub fn new(workdir: impl Into<PathBuf>) -> Self {
        Self {
            workdir: workdir.into(),
            allowed_roots: Vec::new(),
            read_only_roots: Vec::new(),
            max_file_bytes: Some(DEFAULT_MAX_FILE_BYTES),
            text_cap_applies_to_media: false,
            max_image_base64_bytes: Some(DEFAULT_MAX_IMAGE_BASE64_BYTES),
            max_pdf_bytes: Some(DEFAULT_MAX_PDF_BYTES),
            shell_env: std::env::vars()
                .filter(|(k, _)| !k.starts_with("ANTHROPIC_"))
                .collect(),
            bash_path: PathBuf::from("/bin/bash"),
            max_bash_timeout: None,
            after_shell_kill: None,
        }
    }

    /// Set an explicit text cap, which (as in the SDK) also caps images/PDFs.
    pub fn with_explicit_max_file_bytes(mut self, cap: Option<u64>) -> Self {
        self.max_file_bytes = cap;
        self.text_cap_applies_to_media = cap.is_some();
        self
    }
}

/// One session's tools. Calls are made one at a time (`&mut self`).
pub struct Toolset {
    config: ToolConfig,
    /// Canonical workdir and roots, resolved once at construction (§9.2).
    roots: paths::Roots,
    bash: bash::Bash,
}

impl Toolset {
    pub fn new(config: ToolConfig) -> Self {
        let roots = paths::Roots::new(&config);
        Self {
            config,
            roots,
            bash: bash::Bash::new(),
        }
    }

    /// Whether `name` is one of the six tools.
    pub fn owns(name: &str) -> bool {
        TOOL_NAMES.contains(&name)
    }

    /// Run one call. `deadline` is the caller's outer bound (the runner's 150 s);
    /// when it fires first the result has `deadline_exceeded` set.
    /// Invalid input yields `ValueError('Invalid arguments for function <tool>')`.
    pub fn call(&mut self, name: &str, input: &Value, deadline: Option<Instant>) -> ToolOutput {
        let result = match name {
            "bash" => input::parse(name, input).map(|i| {
                self.bash
                    .call(&self.config, &self.roots.workdir, i, deadline)
            }),
            "read" => input::parse(name, input).map(|i| read::read(&self.roots, &self.config, i)),
            "write" => input::parse(name, input).map(|i| write::write(&self.roots, i)),
            "edit" => input::parse(name, input).map(|i| edit::edit(&self.roots, &self.config, i)),
            "glob" => input::parse(name, input).map(|i| glob::glob(&self.roots, i, deadline)),
            "grep" => input::parse(name, input).map(|i| grep::grep(&self.roots, i, deadline)),
            _ => Err(format!(
                "unknown tool {}; this toolset provides {}",
                pyrepr::repr(name),
                TOOL_NAMES.join(", ")
            )),
        };
        result.unwrap_or_else(ToolOutput::error)
    }

    /// Kill the shell (if any) and release resources. Idempotent.
    pub fn close(&mut self) {
        self.bash.kill(&self.config);
    }
}

impl Drop for Toolset {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests;
