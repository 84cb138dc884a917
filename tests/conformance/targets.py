"""The workers under comparison and how to start them against the emulator.

* ``sdk``: the official Python SDK's EnvironmentWorker on the host (the reference).
* ``none``: ``sandkeep worker poll --isolation none`` (host, SDK-like).
* ``process``: ``sandkeep worker poll`` with the default kernel sandbox; the tools see the
  workdir as ``/workspace``.

Every target gets its own working directory whose *path length* equals ``/workspace``'s
(``/tmp/kcXXX``), so outputs that embed absolute paths (glob, grep and its 102 400-byte
truncation) line up byte for byte after the workdir is normalised.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import string
import subprocess
from dataclasses import dataclass, field

SANDBOX_WORKDIR = "/workspace"
SDK_WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk_worker.py")
# Visible to bash in every target, so the ANTHROPIC_* scrubbing case has something to hide.
SECRET_API_KEY = "sk-conformance-secret"
ALL_TARGETS = ("sdk", "none", "process")


def make_workdir(base: str = "/tmp") -> tuple[str, str]:
    """Create ``/tmp/kcXXX`` (as long as ``/workspace``) and its sibling ``/tmp/kcXXX-out``."""
    stem_len = len(SANDBOX_WORKDIR) - len(base) - 1
    for _ in range(1000):
        name = "kc" + "".join(random.choices(string.ascii_lowercase + string.digits, k=stem_len - 2))
        workdir = os.path.join(base, name)
        try:
            os.mkdir(workdir, 0o755)
        except FileExistsError:
            continue
        outside = workdir + "-out"
        os.makedirs(outside, exist_ok=True)
        return workdir, outside
    raise RuntimeError(f"could not create a fresh working directory under {base}")


def ripgrep_binaries() -> list[str]:
    """Real paths of every executable ``rg`` on PATH (what the SDK's grep would pick)."""
    found = []
    for entry in os.get_exec_path():
        candidate = shutil.which(os.path.join(entry, "rg")) if os.path.isabs(entry) else None
        if candidate and os.path.realpath(candidate) not in found:
            found.append(os.path.realpath(candidate))
    return found


@functools.cache
def can_hide_ripgrep() -> bool:
    """Whether this host lets us bind-mount over a binary in a private mount namespace."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", "mount --bind /dev/null /dev/null"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def hide_ripgrep(command: list[str]) -> list[str]:
    """Run ``command`` in a private mount namespace where every ``rg`` is /dev/null.

    The SDK's grep prefers an ``rg`` binary on PATH over its built-in fallback, and sandkeep
    always follows the fallback's rules; hiding ripgrep makes the reference the fallback
    without touching anything else of the host (PATH, bash, other binaries).
    """
    binaries = ripgrep_binaries()
    if not binaries or not can_hide_ripgrep():
        return command
    script = f'for f in "$@"; do [ "$f" = -- ] && break; mount --bind /dev/null "$f" || exit 97; done; shift {len(binaries) + 1}; exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", *binaries, "--", *command]


@dataclass
class Target:
    name: str
    workdir: str
    outside: str
    log_path: str
    proc: subprocess.Popen | None = None
    session_id: str = ""
    _log: object = field(default=None, repr=False)

    @property
    def visible_workdir(self) -> str:
        """The workdir path as the tools of this target see and print it."""
        return SANDBOX_WORKDIR if self.name == "process" else self.workdir

    def command(self, base_url: str, environment_id: str, key: str, sandkeep_bin: str, python: str) -> list[str]:
        if self.name == "sdk":
            return hide_ripgrep([python, SDK_WORKER_SCRIPT, base_url, environment_id, key, self.workdir])
        isolation = "none" if self.name == "none" else "process"
        return [
            sandkeep_bin, "worker", "poll",
            "--base-url", base_url,
            "--environment-id", environment_id,
            "--environment-key", key,
            "--workdir", self.workdir,
            "--shared-workdir",
            "--max-idle", "0",
            "--isolation", isolation,
        ]  # fmt: skip

    def start(self, command: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        env["ANTHROPIC_API_KEY"] = SECRET_API_KEY
        self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=os.path.dirname(self.workdir),
        )

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
