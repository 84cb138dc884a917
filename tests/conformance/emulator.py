"""The control-plane emulator as seen by the conformance runner.

Starts `sandkeep emulator` (or any command that prints ``listening on http://ADDR``), and
plays the agent's side of a session through the emulator's admin endpoints
(docs/emulator.md): post one ``agent.tool_use``, wait for the worker's ``user.tool_result``.
Standard library only.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request

ADMIN_KEY = "sk-emu-admin"
_LISTENING = re.compile(r"listening on (http://\S+)")


class EmulatorError(RuntimeError):
    """The emulator could not be started or answered unexpectedly."""


class EmulatorProcess:
    """A running emulator child process; ``base_url`` is known once it is listening."""

    def __init__(self, command: list[str], log_path: str, startup_timeout: float = 60.0) -> None:
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        self.base_url = self._wait_listening(startup_timeout)
        # Keep draining its output so the pipe never fills up and blocks the emulator.
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_listening(self, timeout: float) -> str:
        found: list[str] = []

        def scan() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self._log.write(line)
                match = _LISTENING.search(line)
                if match:
                    found.append(match.group(1))
                    return

        reader = threading.Thread(target=scan, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            raise EmulatorError(
                f"emulator did not print 'listening on http://…' within {timeout:.0f}s; see {self._log.name}"
            )
        return found[0]

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._log.write(line)
        self._log.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.flush()


class Api:
    """Minimal JSON client for the emulator (admin key unless a token is given)."""

    def __init__(self, base_url: str, key: str = ADMIN_KEY) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key

    def request(self, method: str, path: str, body: object | None = None, timeout: float = 30.0) -> dict:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("x-api-key", self.key)
        req.add_header("anthropic-version", "2023-06-01")
        if data is not None:
            req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")[:500]
            raise EmulatorError(f"{method} {path} -> HTTP {err.code}: {detail}") from err

    def create_environment(self, name: str) -> str:
        env = self.request("POST", "/v1/environments", {"name": name, "config": {"type": "self_hosted"}})
        return env["id"]

    def mint_environment_key(self, environment_id: str) -> str:
        return self.request("POST", f"/v1/emulator/environments/{environment_id}/keys", {})["key"]

    def create_agent(self, name: str) -> str:
        body = {"name": name, "model": "claude-conformance", "tools": [{"type": "agent_toolset_20260401"}]}
        return self.request("POST", "/v1/agents", body)["id"]

    def create_session(self, environment_id: str, agent_id: str) -> str:
        return self.request("POST", "/v1/sessions", {"environment_id": environment_id, "agent": agent_id})["id"]

    def post_agent_event(self, session_id: str, event: dict) -> dict:
        return self.request("POST", f"/v1/emulator/sessions/{session_id}/events", {"events": [event]})["data"][0]

    def recent_events(self, session_id: str, limit: int = 10) -> list[dict]:
        return self.request("GET", f"/v1/sessions/{session_id}/events?order=desc&limit={limit}")["data"]


class CallTimeout(RuntimeError):
    """No result arrived for a tool call in time."""


class SessionDriver:
    """Plays the agent in one session: one tool call at a time."""

    def __init__(self, api: Api, session_id: str, poll_interval: float = 0.02) -> None:
        self.api = api
        self.session_id = session_id
        self.poll_interval = poll_interval

    def call(self, name: str, tool_input: object, timeout: float, worker_gone=lambda: None) -> dict:
        """Post ``agent.tool_use`` and return ``{"is_error", "content"}`` of its result.

        ``worker_gone()`` returns a reason string once the worker process has died, which
        ends the wait early instead of running into ``timeout``.
        """
        event = self.api.post_agent_event(
            self.session_id, {"type": "agent.tool_use", "name": name, "input": tool_input}
        )
        tool_use_id = event["id"]
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            # The worker answers calls in order, so the result is normally the newest event;
            # look only at that one (results can be megabytes) and, now and then, further back.
            polls += 1
            window = 20 if polls % 50 == 0 else 1
            for ev in self.api.recent_events(self.session_id, window):
                if ev.get("type") == "user.tool_result" and ev.get("tool_use_id") == tool_use_id:
                    return {"is_error": bool(ev.get("is_error")), "content": ev.get("content")}
            gone = worker_gone()
            if gone:
                raise CallTimeout(f"no user.tool_result for {name}: {gone}")
            if time.monotonic() > deadline:
                raise CallTimeout(f"no user.tool_result for {name} within {timeout:.0f}s")
            time.sleep(self.poll_interval)

    def terminate(self) -> None:
        self.api.post_agent_event(self.session_id, {"type": "session.status_terminated"})
