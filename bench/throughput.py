"""Benchmark 5: session throughput.

Workers start first and poll; then SESSIONS scenario sessions of CALLS_PER_SESSION
sequential tool calls each are enqueued at once (session + `user.message`). The
wall time runs from the first enqueue until every work item is stopped; then each
scenario is checked to have finished and passed."""

from __future__ import annotations

import time

from emu import Api
from workers import Tools, WorkerGroup, command, workdir

MAX_IDLE_S = 0.2
WARMUP_S = 1.0
POLLING_TIMEOUT_S = 60.0
DEADLINE_S = 600.0


def scenario(calls: int) -> dict:
    """One turn of `calls` sequential steps, cycling through cheap tools."""
    cycle = [
        {"name": "write", "input": {"file_path": "t.txt", "content": "hello\n"}},
        {"name": "read", "input": {"file_path": "t.txt"}},
        {"name": "bash", "input": {"command": "echo hi"}},
        {"name": "glob", "input": {"pattern": "*.txt"}},
        {"name": "grep", "input": {"pattern": "hello"}},
    ]
    steps = [[dict(cycle[i % len(cycle)], expect={"is_error": False})] for i in range(calls)]
    return {"turns": [{"steps": steps, "message": "done"}], "terminate_after": False}


def wait_polling(api: Api, env_id: str, key: str, processes: int, group: WorkerGroup) -> None:
    """Until every worker process polls (distinct Anthropic-Worker-IDs), so start-up is not timed."""
    deadline = time.perf_counter() + POLLING_TIMEOUT_S
    saved, api.key = api.key, key
    try:
        while api.request("GET", f"/v1/environments/{env_id}/work/stats").get("workers_polling", 0) < processes:
            group.check_alive()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{processes} workers did not all poll within {POLLING_TIMEOUT_S:.0f}s")
            time.sleep(0.1)
    finally:
        api.key = saved
    time.sleep(WARMUP_S)  # one more poll cycle each


def run_config(api: Api, tools: Tools, kind: str, processes: int, sessions: int, calls: int,
               log_dir: str, max_sessions: int = 64) -> dict:
    env_id, key = api.environment(f"tp-{kind}-{processes}")
    agent = api.agent()
    base = f"http://{api.host}:{api.port}"
    with workdir("skbench-tp-") as wd:
        cmd = command(kind, tools, base, env_id, key, wd, MAX_IDLE_S, max_sessions)
        group = WorkerGroup(cmd, processes, f"{log_dir}/tp-{kind}-{processes}")
        try:
            wait_polling(api, env_id, key, processes, group)
            script = scenario(calls)
            t0 = time.perf_counter()
            sids = []
            for _ in range(sessions):
                sid = api.session(env_id, agent, script)
                api.user_message(sid, "go")
                sids.append(sid)
            enqueued = time.perf_counter() - t0
            while True:
                items = api.work_items(env_id, key)
                stopped = sum(1 for it in items if it.get("state") == "stopped")
                if stopped >= sessions:
                    break
                if time.perf_counter() - t0 > DEADLINE_S:
                    raise TimeoutError(f"{kind}×{processes}: only {stopped}/{sessions} items stopped after {DEADLINE_S:.0f}s")
                group.check_alive()
                time.sleep(0.05)
            wall = time.perf_counter() - t0
        finally:
            group.stop()
    passed = 0
    failures = []
    for sid in sids:
        state = api.request("GET", f"/v1/emulator/sessions/{sid}/scenario")
        if state.get("complete") and state.get("passed"):
            passed += 1
        elif len(failures) < 3:
            failures.append(f"{sid}: phase={state.get('phase')} failures={state.get('failures')}")
    return {"wall_s": wall, "enqueue_s": enqueued, "sessions": sessions, "calls": calls,
            "passed": passed, "failures": failures, "sessions_per_s": sessions / wall}
