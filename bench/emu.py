"""The control-plane emulator as the benchmarks use it: start `sandkeep emulator`,
make environments/agents/sessions through the admin key, post agent events and
wait for results on the session's SSE stream. Standard library only."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import threading
import time
import urllib.parse
from datetime import datetime, timezone

ADMIN_KEY = "sk-emu-admin"
_LISTENING = re.compile(r"listening on (http://\S+)")
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse_stamp(text: str) -> float:
    """RFC 3339 with any number of fractional digits -> seconds since the epoch."""
    m = _STAMP.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    whole = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return whole.astimezone(timezone.utc).timestamp() + frac


class Emulator:
    """A `sandkeep emulator` child process listening on a free loopback port."""

    def __init__(self, sandkeep: str, log_path: str) -> None:
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sandkeep, "emulator", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = _LISTENING.search(line)
        if not m:
            self.stop()
            raise RuntimeError(f"emulator did not start: {line!r}; see {log_path}")
        self.base_url = m.group(1)
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Api:
    """JSON client on one keep-alive connection (not thread-safe)."""

    def __init__(self, base_url: str, key: str = ADMIN_KEY) -> None:
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.key = key
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def headers(self) -> dict:
        return {"x-api-key": self.key, "anthropic-version": "2023-06-01", "content-type": "application/json"}

    def request(self, method: str, path: str, body: object | None = None) -> object:
        data = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=self.headers())
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, ConnectionError):
                # The server may close an idle keep-alive connection; reconnect once.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path} -> HTTP {resp.status}: {raw[:400]!r}")
        return json.loads(raw) if raw else None

    def environment(self, name: str) -> tuple[str, str]:
        """A new self-hosted environment and an environment key for it."""
        env = self.request("POST", "/v1/environments", {"name": name, "config": {"type": "self_hosted"}})
        key = self.request("POST", f"/v1/emulator/environments/{env['id']}/keys", {})["key"]
        return env["id"], key

    def agent(self) -> str:
        body = {"name": "bench", "model": "claude-bench", "tools": [{"type": "agent_toolset_20260401"}]}
        return self.request("POST", "/v1/agents", body)["id"]

    def session(self, environment_id: str, agent_id: str, scenario: dict | None = None) -> str:
        body = {"environment_id": environment_id, "agent": agent_id}
        if scenario is None:
            return self.request("POST", "/v1/sessions", body)["id"]
        body["scenario"] = scenario
        return self.request("POST", "/v1/emulator/sessions", body)["id"]

    def agent_event(self, session_id: str, event: dict) -> dict:
        return self.request("POST", f"/v1/emulator/sessions/{session_id}/events", {"events": [event]})["data"][0]

    def user_message(self, session_id: str, text: str) -> None:
        event = {"type": "user.message", "content": [{"type": "text", "text": text}]}
        self.request("POST", f"/v1/sessions/{session_id}/events", {"events": [event]})

    def work_items(self, environment_id: str, env_key: str) -> list[dict]:
        saved, self.key = self.key, env_key
        try:
            return self.request("GET", f"/v1/environments/{environment_id}/work?limit=1000")["data"]
        finally:
            self.key = saved


class EventStream:
    """The live SSE stream of one session."""

    def __init__(self, api: Api, session_id: str) -> None:
        self.conn = http.client.HTTPConnection(api.host, api.port, timeout=60)
        headers = api.headers() | {"accept": "text/event-stream"}
        self.conn.request("GET", f"/v1/sessions/{session_id}/events/stream", headers=headers)
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError(f"event stream of {session_id}: HTTP {self.resp.status}")

    def wait_result(self, tool_use_id: str, timeout: float) -> dict:
        """Block until the `user.tool_result` for `tool_use_id` arrives."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.resp.readline()
            if not line:
                raise RuntimeError("the event stream closed")
            if not line.startswith(b"data:"):
                continue
            event = json.loads(line[5:])
            if event.get("type") == "user.tool_result" and event.get("tool_use_id") == tool_use_id:
                return event
        raise TimeoutError(f"no user.tool_result for {tool_use_id} within {timeout:.0f}s")

    def close(self) -> None:
        self.conn.close()
