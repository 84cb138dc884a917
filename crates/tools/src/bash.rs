//! The `bash` tool (§9.9): one persistent `/bin/bash --noprofile --norc` per
//! toolset, fed through stdin, with a per-call nonce sentinel marking the end of
//! each command's output.
//!
//! The shell runs in its own session (so its process group id is its pid) and is
//! killed as a whole group. I/O is non-blocking and driven by `poll()`, so a
//! background job that keeps the pipe open cannot hang a call. Unlike the SDK, a
//! shell that timed out, was killed at the outer deadline or exited on its own is
//! replaced automatically on the next call, and that call's result says so.

use crate::input::BashInput;
use crate::{pyrepr::float_repr, ToolConfig, ToolOutput};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use regex::Regex;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const DEFAULT_TIMEOUT_SECS: f64 = 120.0;
/// Raw output bytes kept per call (the last ones win).
const OUTPUT_LIMIT: usize = 102_400;
const READ_CHUNK: usize = 65_536;
/// How often a call checks whether the shell is still alive while it waits.
const LIVENESS_INTERVAL: Duration = Duration::from_millis(100);
/// How long `kill` waits for the killed shell to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(2);
const ANSI_CSI: &str = r"\x1b\[[0-9;?]*[ -/]*[@-~]";

const TIMEOUT_NOTE: &str =
    "(the shell was killed and will be restarted on the next call; cwd, environment variables and background jobs were reset)";
const EXITED_NOTICE: &str =
    "(the previous shell had exited, so this command ran in a new shell; cwd, environment variables and background jobs were reset)";
const KILLED_NOTICE: &str = "(the previous command hit the tool time limit and its shell was killed, so this command ran in a new shell; cwd, environment variables and background jobs were reset)";

/// The bash tool's state: the live shell, if any, and a notice owed to the next
/// result after the shell was lost.
pub struct Bash {
    shell: Option<Shell>,
    notice: Option<&'static str>,
    ansi: Regex,
}

struct Shell {
    child: Child,
    stdin: ChildStdin,
    stdout: File,
}

enum Outcome {
    /// The sentinel line arrived, or the shell died (`exit_code` −1, `died`).
    Finished {
        raw: Vec<u8>,
        truncated: bool,
        died: bool,
    },
    TimedOut,
    DeadlineExceeded,
}

impl Default for Bash {
    fn default() -> Self {
        Self::new()
    }
}

impl Bash {
    pub fn new() -> Self {
        Self {
            shell: None,
            notice: None,
            ansi: Regex::new(ANSI_CSI).expect("static regex"),
        }
    }

    pub fn call(
        &mut self,
        config: &ToolConfig,
        workdir: &Path,
        input: BashInput,
        deadline: Option<Instant>,
    ) -> ToolOutput {
        if input.restart == Some(true) {
            self.kill(config);
            self.notice = None;
            return match self.start(config, workdir) {
                Ok(()) => ToolOutput::text("bash session restarted"),
                Err(text) => ToolOutput::error(text),
            };
        }
        let Some(command) = input.command.filter(|c| !c.is_empty()) else {
            return ToolOutput::error("bash: command is required");
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return ToolOutput::deadline("bash");
        }
        let secs = timeout_secs(input.timeout_ms, config.max_bash_timeout);
        let call_deadline = Duration::try_from_secs_f64(secs.max(0.0))
            .ok()
            .and_then(|d| Instant::now().checked_add(d));

        if self.shell.as_mut().is_some_and(|s| !s.is_alive()) {
            self.kill(config);
            self.notice = Some(EXITED_NOTICE);
        }
        if self.shell.is_none() {
            if let Err(text) = self.start(config, workdir) {
                return ToolOutput::error(text);
            }
        }
        let notice = self.notice.take();
        let shell = self.shell.as_mut().expect("started above");
        let marker = format!("__ANT_CMD_{:032x}_DONE__", rand::random::<u128>());
        match shell.run(&command, &marker, call_deadline, deadline) {
            Outcome::Finished {
                raw,
                truncated,
                died,
            } => {
                if died {
                    self.kill(config);
                    self.notice = Some(EXITED_NOTICE);
                }
                let (mut text, exit_code) = self.render(&raw, &marker, truncated);
                if text.is_empty() {
                    text = "(no output)".into();
                }
                if let Some(notice) = notice {
                    text = format!("{notice}\n{text}");
                }
                if exit_code == 0 {
                    ToolOutput::text(text)
                } else {
                    ToolOutput::error(text)
                }
            }
            Outcome::TimedOut => {
                self.kill(config);
                ToolOutput::error(format!(
                    "bash: bash command timed out after {}s\n{TIMEOUT_NOTE}",
                    float_repr(secs)
                ))
            }
            Outcome::DeadlineExceeded => {
                self.kill(config);
                self.notice = Some(KILLED_NOTICE);
                ToolOutput::deadline("bash")
            }
        }
    }

    /// Output text and exit code from the raw bytes (§9.9 steps 9–10).
    fn render(&self, raw: &[u8], marker: &str, truncated: bool) -> (String, i32) {
        let decoded = String::from_utf8_lossy(raw);
        let text = self.ansi.replace_all(&decoded, "");
        let (output, code) = match text.rfind(marker) {
            Some(pos) => {
                let code_text = text[pos + marker.len()..].split('\n').next().unwrap_or("");
                (
                    text[..pos].trim_end_matches('\n').to_string(),
                    code_text.trim().parse().unwrap_or(-1),
                )
            }
            None => (text.trim().to_string(), -1),
        };
        if truncated {
            (format!("[output truncated]\n{output}"), code)
        } else {
            (output, code)
        }
    }

    fn start(&mut self, config: &ToolConfig, workdir: &Path) -> Result<(), String> {
        let shell = Shell::spawn(config, workdir)
            .map_err(|e| format!("bash: could not start {}: {e}", config.bash_path.display()))?;
        self.shell = Some(shell);
        Ok(())
    }

    /// Kill the shell's whole process group, run the host's cleanup hook, and
    /// reap the shell. Idempotent.
    pub fn kill(&mut self, config: &ToolConfig) {
        let Some(mut shell) = self.shell.take() else {
            return;
        };
        let pid = shell.child.id() as i32;
        // The shell is a session leader, so its pid is the group id.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = shell.child.kill();
        if let Some(after_kill) = config.after_shell_kill {
            after_kill();
        }
        let give_up = Instant::now() + REAP_WAIT;
        // Err (ECHILD) means someone else — a sandbox init — already reaped it.
        while let Ok(None) = shell.child.try_wait() {
            if Instant::now() >= give_up {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Per-call timeout in seconds: `timeout_ms` (0/absent → 120 s), capped by policy.
fn timeout_secs(timeout_ms: Option<i64>, max: Option<Duration>) -> f64 {
    let requested = match timeout_ms {
        None | Some(0) => DEFAULT_TIMEOUT_SECS,
        Some(ms) => ms as f64 / 1000.0,
    };
    match max {
        Some(max) if requested > max.as_secs_f64() => max.as_secs_f64(),
        _ => requested,
    }
}

fn set_nonblocking(fd: &impl AsRawFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

impl Shell {
    fn spawn(config: &ToolConfig, workdir: &Path) -> io::Result<Self> {
        // One pipe for stdout and stderr: bash's stderr is merged into stdout.
        let (read_end, write_end): (OwnedFd, OwnedFd) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let mut command = Command::new(&config.bash_path);
        command
            .args(["--noprofile", "--norc"])
            .current_dir(workdir)
            .env_clear()
            .envs(
                config
                    .shell_env
                    .iter()
                    .filter(|(k, _)| !k.starts_with("ANTHROPIC_"))
                    .map(|(k, v)| (k, v)),
            )
            .env("PS1", "")
            .env("PS2", "")
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::from(write_end.try_clone()?))
            .stderr(Stdio::from(write_end));
        // SAFETY: setsid is async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
        }
        let mut child = command.spawn()?;
        drop(command); // closes our copies of the pipe's write end, so EOF can arrive
        let stdin = child.stdin.take().expect("stdin was piped");
        let stdout = File::from(read_end);
        set_nonblocking(&stdin)?;
        set_nonblocking(&stdout)?;
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// Err from `try_wait` is ECHILD: a sandbox init reaped the shell first.
    fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn run(
        &mut self,
        command: &str,
        marker: &str,
        call_deadline: Option<Instant>,
        outer: Option<Instant>,
    ) -> Outcome {
        // The empty quote pair keeps the marker literal out of the input stream.
        let split_marker = format!("{}''{}", &marker[..8], &marker[8..]);
        let script =
            format!("{{ {command}\n}} </dev/null 2>&1; printf '\\n{split_marker}%d\\n' $?\n");
        let mut pending = script.as_bytes();
        let mut output = OutputTail::default();
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut last_liveness_check = Instant::now();
        loop {
            if let Some(end) = output.sentinel_line_end(marker) {
                return output.finish(Some(end), false);
            }
            let now = Instant::now();
            // When both bounds have passed, the earlier one is what fired.
            match (
                call_deadline.filter(|&c| now >= c),
                outer.filter(|&o| now >= o),
            ) {
                (Some(c), Some(o)) if o < c => return Outcome::DeadlineExceeded,
                (Some(_), _) => return Outcome::TimedOut,
                (None, Some(_)) => return Outcome::DeadlineExceeded,
                (None, None) => {}
            }
            if now.duration_since(last_liveness_check) >= LIVENESS_INTERVAL {
                last_liveness_check = now;
                if !self.is_alive() {
                    self.drain(&mut output, &mut chunk);
                    let end = output.sentinel_line_end(marker);
                    return output.finish(end, end.is_none());
                }
            }
            let wake = [call_deadline, outer, Some(now + LIVENESS_INTERVAL)]
                .into_iter()
                .flatten()
                .min();
            let wait = wake.map_or(LIVENESS_INTERVAL, |w| w.saturating_duration_since(now));
            let timeout =
                PollTimeout::try_from(wait.as_millis().max(1) as u64).unwrap_or(PollTimeout::MAX);
            let mut fds = vec![PollFd::new(self.stdout.as_fd(), PollFlags::POLLIN)];
            if !pending.is_empty() {
                fds.push(PollFd::new(self.stdin.as_fd(), PollFlags::POLLOUT));
            }
            if poll(&mut fds, timeout).is_err() {
                continue; // EINTR
            }
            let readable = fds[0].any().unwrap_or(false);
            let writable = fds.get(1).is_some_and(|f| f.any().unwrap_or(false));
            drop(fds);
            if readable {
                match self.stdout.read(&mut chunk) {
                    Ok(0) => {
                        // Every writer is gone: the shell exited or closed its stdout.
                        let end = output.sentinel_line_end(marker);
                        return output.finish(end, end.is_none());
                    }
                    Ok(n) => output.push(&chunk[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => return output.finish(None, true),
                }
            }
            if writable {
                match self.stdin.write(pending) {
                    Ok(n) => pending = &pending[n..],
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    // EPIPE: the shell is gone; the liveness check ends the call.
                    Err(_) => pending = &[],
                }
            }
        }
    }

    /// Collect what is already in the pipe without waiting.
    fn drain(&mut self, output: &mut OutputTail, chunk: &mut [u8]) {
        while let Ok(n @ 1..) = self.stdout.read(chunk) {
            output.push(&chunk[..n]);
        }
    }
}

/// The last [`OUTPUT_LIMIT`] bytes of a call's output, plus what completion
/// detection needs.
#[derive(Default)]
struct OutputTail {
    buf: Vec<u8>,
    dropped: bool,
    /// Bytes of `buf` already searched for the marker (minus an overlap).
    searched: usize,
    marker_at: Option<usize>,
}

impl OutputTail {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        // Trim in batches; never once the marker was seen (its index must hold).
        if self.marker_at.is_none() && self.buf.len() > 2 * OUTPUT_LIMIT {
            let excess = self.buf.len() - OUTPUT_LIMIT;
            self.buf.drain(..excess);
            self.searched = self.searched.saturating_sub(excess);
            self.dropped = true;
        }
    }

    /// End (exclusive) of the sentinel line, once the marker and the newline
    /// after its exit code have both arrived.
    fn sentinel_line_end(&mut self, marker: &str) -> Option<usize> {
        let marker = marker.as_bytes();
        if self.marker_at.is_none() {
            let from = self.searched.saturating_sub(marker.len());
            let found = self.buf[from..]
                .windows(marker.len())
                .position(|w| w == marker);
            self.marker_at = found.map(|i| from + i);
            self.searched = self.buf.len();
        }
        let after = self.marker_at? + marker.len();
        self.buf[after..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| after + i + 1)
    }

    fn finish(mut self, end: Option<usize>, died: bool) -> Outcome {
        if let Some(end) = end {
            self.buf.truncate(end); // later bytes belong to background jobs
        }
        if self.buf.len() > OUTPUT_LIMIT {
            self.buf.drain(..self.buf.len() - OUTPUT_LIMIT);
            self.dropped = true;
        }
        Outcome::Finished {
            raw: self.buf,
            truncated: self.dropped,
            died,
        }
    }
}

#[cfg(test)]
#[path = "bash_tests.rs"]
mod tests;
