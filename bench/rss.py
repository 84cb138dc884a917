"""Benchmark 7: worker resident memory, idle and with sessions held open.

Reads Rss/Pss from /proc/<pid>/smaps_rollup of the worker and, separately, of
its descendants (the per-session sandbox inits under `process` isolation)."""

from __future__ import annotations

import os
import time

from emu import Api, EventStream
from roundtrip import PICKUP_TIMEOUT, one_call
from workers import Tools, WorkerGroup, command, workdir

SETTLE_S = 2.0


def footprint_kib(pid: int) -> tuple[int, int]:
    """(Rss, Pss) of one process in KiB; (0, 0) if it is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
                    values[parts[0]] = int(parts[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0, 0
    return values.get("Rss:", 0), values.get("Pss:", 0)


def descendants(pid: int) -> list[int]:
    out, queue = [], [pid]
    while queue:
        p = queue.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    kids = [int(c) for c in f.read().split()]
                out += kids
                queue += kids
        except FileNotFoundError:
            continue
    return out


def tree_kib(pids: list[int]) -> tuple[int, int]:
    rss = pss = 0
    for p in pids:
        r, s = footprint_kib(p)
        rss, pss = rss + r, pss + s
    return rss, pss


def run_kind(api: Api, tools: Tools, kind: str, sessions: int, log_dir: str) -> dict:
    env_id, key = api.environment(f"rss-{kind}")
    agent = api.agent()
    base = f"http://{api.host}:{api.port}"
    with workdir("skbench-rss-") as wd:
        group = WorkerGroup(command(kind, tools, base, env_id, key, wd, None), 1, f"{log_dir}/rss-{kind}")
        pid = group.pids()[0]
        sids, streams = [], []
        try:
            time.sleep(SETTLE_S)
            group.check_alive()
            idle = footprint_kib(pid)
            result = {"idle_rss_kib": idle[0], "idle_pss_kib": idle[1], "sessions": 0}
            if kind == "sdk":
                return result  # one session at a time: "sessions held open" does not apply
            for _ in range(sessions):
                sid = api.session(env_id, agent)
                stream = EventStream(api, sid)
                sids.append(sid)
                streams.append(stream)
                # A file call (no shell): the session is live, its sandbox idle.
                one_call(api, stream, sid, "write", {"file_path": "t.txt", "content": "x"}, PICKUP_TIMEOUT)
            time.sleep(SETTLE_S)
            busy = footprint_kib(pid)
            kids = descendants(pid)
            kids_rss, kids_pss = tree_kib(kids)
            result.update({
                "sessions": sessions, "active_rss_kib": busy[0], "active_pss_kib": busy[1],
                "children": len(kids), "children_rss_kib": kids_rss, "children_pss_kib": kids_pss,
            })
            return result
        finally:
            for sid, stream in zip(sids, streams):
                api.agent_event(sid, {"type": "session.status_terminated"})
                stream.close()
            group.stop()
