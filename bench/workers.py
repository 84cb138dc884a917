"""Start and stop the workers under comparison against one environment.

Kinds: ``sdk`` (the official SDK's EnvironmentWorker, one Python process each),
``none`` and ``process`` (``sandkeep worker poll`` with that isolation)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = ("sdk", "none", "process")


@dataclass
class Tools:
    sandkeep: str
    python: str


def command(kind: str, tools: Tools, base_url: str, env_id: str, key: str, workdir: str,
            max_idle_s: float | None, max_sessions: int = 64) -> list[str]:
    if kind == "sdk":
        idle = "none" if max_idle_s is None else repr(max_idle_s)
        return [tools.python, os.path.join(HERE, "sdk_worker.py"), base_url, env_id, key, workdir, idle]
    if kind not in ("none", "process"):
        raise ValueError(f"unknown worker kind {kind!r}; expected one of {KINDS}")
    idle_ms = 0 if max_idle_s is None else int(max_idle_s * 1000)
    return [tools.sandkeep, "worker", "poll", "--base-url", base_url, "--environment-id", env_id,
            "--environment-key", key, "--workdir", workdir, "--isolation", kind,
            "--max-idle", f"{idle_ms}ms", "--max-sessions", str(max_sessions)]


def workdir(prefix: str) -> tempfile.TemporaryDirectory:
    """A scratch --workdir. mkdtemp makes it 0700, which the sandbox's mapped
    uids cannot traverse to reach sessions/<id>; open it up like a normal dir."""
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    os.chmod(tmp.name, 0o755)
    return tmp


class WorkerGroup:
    """`count` processes of one worker kind; logs go to `log_prefix`.N.log."""

    def __init__(self, cmd: list[str], count: int, log_prefix: str) -> None:
        self.procs: list[subprocess.Popen] = []
        self.logs = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        for i in range(count):
            log = open(f"{log_prefix}.{i}.log", "w", encoding="utf-8")  # noqa: SIM115 (closed in stop)
            self.logs.append(log)
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"worker {p.args[:3]} exited with {p.returncode}; see {self.logs[0].name}")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                print(f"bench: worker pid {p.pid} ignored SIGTERM for 15 s; killing it", file=sys.stderr)
                p.kill()
                p.wait()
        for log in self.logs:
            log.close()
