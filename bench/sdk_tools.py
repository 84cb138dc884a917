"""Call the official SDK's glob/grep tools in-process, like `skbench tools`.

Usage: python sdk_tools.py ROOT OUTDIR RUNS (glob|grep):PATTERN...
Prints one JSON line per job ({"name": "sdk_<i>", "unit": "us", "samples": [...]})
and writes the last output of job i to OUTDIR/<i>.txt. Whether the SDK's grep
uses `rg` or its built-in walk depends on PATH, which the caller sets."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from anthropic.lib.tools.agent_toolset import AgentToolContext, beta_agent_toolset_20260401


def text_of(result: object) -> str:
    if isinstance(result, str):
        return result
    return "\n".join(getattr(b, "text", None) or (b.get("text", "") if isinstance(b, dict) else "") for b in result)


async def main(root: str, outdir: str, runs: int, jobs: list[str]) -> None:
    os.makedirs(outdir, exist_ok=True)
    tools = {t.name: t for t in beta_agent_toolset_20260401(AgentToolContext(workdir=root))}
    for i, job in enumerate(jobs):
        tool, _, pattern = job.partition(":")
        if tool not in ("glob", "grep") or not pattern:
            sys.exit(f"a job is glob:PATTERN or grep:PATTERN, got {job!r}")
        samples, text = [], ""
        for _ in range(runs):
            t0 = time.perf_counter()
            text = text_of(await tools[tool].call({"pattern": pattern}))
            samples.append((time.perf_counter() - t0) * 1e6)
        with open(os.path.join(outdir, f"{i}.txt"), "w", encoding="utf-8") as f:
            f.write(text)
        print(json.dumps({"name": f"sdk_{i}", "unit": "us", "samples": samples}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit("usage: sdk_tools.py ROOT OUTDIR RUNS (glob|grep):PATTERN...")
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]))
