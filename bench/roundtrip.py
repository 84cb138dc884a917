"""Benchmark 4: sequential tool-call round trips through a real worker.

The driver plays the agent: it posts `agent.tool_use` through the admin endpoint
and waits on the session's SSE stream for the worker's `user.tool_result`. The
measured span is the server's `processed_at` of the result minus that of the
call (both stamped by the emulator), so the driver's own latency is excluded."""

from __future__ import annotations

import statistics
import subprocess
import time

from emu import Api, EventStream, parse_stamp
from workers import Tools, WorkerGroup, command, workdir

ONE_KIB = "".join(f"{i:02} {'x' * 60}\n" for i in range(16))
CALLS = {"bash": {"command": "true"}, "read": {"file_path": "one_kib.txt"}}
PICKUP_TIMEOUT = 60.0
CALL_TIMEOUT = 30.0


def one_call(api: Api, stream: EventStream, sid: str, name: str, tool_input: dict, timeout: float) -> tuple[float, float]:
    """(server-side seconds, driver-side seconds) of one call; raises on a tool error."""
    t0 = time.perf_counter()
    use = api.agent_event(sid, {"type": "agent.tool_use", "name": name, "input": tool_input})
    result = stream.wait_result(use["id"], timeout)
    driver = time.perf_counter() - t0
    if result.get("is_error"):
        raise RuntimeError(f"{name} {tool_input} failed in the worker: {result.get('content')}")
    return parse_stamp(result["processed_at"]) - parse_stamp(use["processed_at"]), driver


def run_kind(api: Api, tools: Tools, kind: str, calls: int, runs: int, log_dir: str) -> dict:
    """{tool: {"run_medians_ms": [...], "driver_medians_ms": [...]}} for one worker kind."""
    env_id, key = api.environment(f"rt-{kind}")
    agent = api.agent()
    out = {name: {"run_medians_ms": [], "driver_medians_ms": []} for name in CALLS}
    with workdir("skbench-rt-") as wd:
        group = WorkerGroup(command(kind, tools, api_base(api), env_id, key, wd, None), 1, f"{log_dir}/rt-{kind}")
        try:
            for _ in range(runs):
                sid = api.session(env_id, agent)
                stream = EventStream(api, sid)
                try:
                    # The first call also waits for the worker to claim the session.
                    one_call(api, stream, sid, "write", {"file_path": "one_kib.txt", "content": ONE_KIB}, PICKUP_TIMEOUT)
                    for name, tool_input in CALLS.items():
                        one_call(api, stream, sid, name, tool_input, CALL_TIMEOUT)  # warm (e.g. start the shell)
                        server, driver = zip(*(one_call(api, stream, sid, name, tool_input, CALL_TIMEOUT) for _ in range(calls)))
                        out[name]["run_medians_ms"].append(statistics.median(server) * 1000)
                        out[name]["driver_medians_ms"].append(statistics.median(driver) * 1000)
                finally:
                    api.agent_event(sid, {"type": "session.status_terminated"})
                    stream.close()
                group.check_alive()
        finally:
            group.stop()
    return out


def api_base(api: Api) -> str:
    return f"http://{api.host}:{api.port}"


def run_floor(api: Api, skbench: str, calls: int, runs: int) -> dict:
    """The same measurement against `skbench nullworker`, which answers each call at
    once through the same SSE + HTTP path: what the emulator and the wire cost."""
    env_id, key = api.environment("rt-floor")
    agent = api.agent()
    out = {name: {"run_medians_ms": [], "driver_medians_ms": []} for name in CALLS}
    for _ in range(runs):
        sid = api.session(env_id, agent)
        proc = subprocess.Popen([skbench, "nullworker", api_base(api), key, sid],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stream = EventStream(api, sid)
        try:
            if proc.stdout is None or proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"skbench nullworker did not start: {proc.stderr.read() if proc.stderr else ''}")
            for name, tool_input in CALLS.items():
                one_call(api, stream, sid, name, tool_input, CALL_TIMEOUT)
                server, driver = zip(*(one_call(api, stream, sid, name, tool_input, CALL_TIMEOUT) for _ in range(calls)))
                out[name]["run_medians_ms"].append(statistics.median(server) * 1000)
                out[name]["driver_medians_ms"].append(statistics.median(driver) * 1000)
        finally:
            api.agent_event(sid, {"type": "session.status_terminated"})
            stream.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return out
