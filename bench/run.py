"""Run every benchmark side by side and write docs/benchmarks.md.

Usage (normally through scripts/bench):
  python bench/run.py --sandkeep BIN --skbench BIN --tree DIR --out FILE [--quick] [--command TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import report  # noqa: E402
import roundtrip  # noqa: E402
import rss  # noqa: E402
import search  # noqa: E402
import throughput  # noqa: E402
from emu import Api, Emulator  # noqa: E402
from workers import Tools  # noqa: E402

FULL = {"iterations": 300, "idle_sessions": 20, "rt_calls": 1000, "rt_runs": 5, "tp_sessions": 200,
        "tp_calls": 5, "search_runs": 5, "rss_sessions": 20}
QUICK = {"iterations": 30, "idle_sessions": 5, "rt_calls": 50, "rt_runs": 2, "tp_sessions": 20,
         "tp_calls": 5, "search_runs": 1, "rss_sessions": 5}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sandbox_section(skbench: str, params: dict) -> dict:
    proc = subprocess.run([skbench, "sandbox", str(params["iterations"]), str(params["idle_sessions"])],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"skbench sandbox failed: {proc.stderr[-3000:]}")
    out = {}
    for line in proc.stdout.splitlines():
        rec = json.loads(line)
        out[rec["name"]] = rec.get("samples", rec.get("value"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sandkeep", required=True, help="release sandkeep binary")
    ap.add_argument("--skbench", required=True, help="bench/ release binary skbench")
    ap.add_argument("--tree", required=True, help="large source tree for glob/grep (a copy; never modified)")
    ap.add_argument("--out", required=True, help="markdown report to write")
    ap.add_argument("--work", default="/tmp/skbench-work", help="scratch directory for logs and outputs")
    ap.add_argument("--no-rg-path", default="/tmp/skbench-work/empty-path", help="PATH without rg (SDK fallback)")
    ap.add_argument("--quick", action="store_true", help="few iterations (smoke test)")
    ap.add_argument("--command", default="scripts/bench", help="command line shown in the report")
    args = ap.parse_args()
    params = QUICK if args.quick else FULL
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.no_rg_path, exist_ok=True)
    tools = Tools(sandkeep=args.sandkeep, python=sys.executable)
    results: dict = {"params": params, "quick": args.quick, "timings_s": {}}
    started = time.perf_counter()

    def timed(name: str, fn):
        log(f"{name} …")
        t0 = time.perf_counter()
        value = fn()
        results["timings_s"][name] = time.perf_counter() - t0
        log(f"{name} done in {results['timings_s'][name]:.1f}s")
        return value

    results["env"] = report.environment(args.sandkeep, sys.executable)
    results["sandbox"] = timed("sandbox start-up, per-call and idle memory (1-3)",
                               lambda: sandbox_section(args.skbench, params))
    emulator = Emulator(args.sandkeep, f"{args.work}/emulator.log")
    try:
        api = Api(emulator.base_url)
        results["roundtrip"] = {}
        results["roundtrip"]["floor"] = timed(
            "round trip floor: null worker (4)",
            lambda: roundtrip.run_floor(api, args.skbench, params["rt_calls"], params["rt_runs"]))
        for kind in ("sdk", "none", "process"):
            results["roundtrip"][kind] = timed(
                f"round trip {kind} (4)",
                lambda k=kind: roundtrip.run_kind(api, tools, k, params["rt_calls"], params["rt_runs"], args.work))
        results["throughput"] = {}
        for label, kind, procs in (("sdk×1", "sdk", 1), ("sdk×8", "sdk", 8),
                                   ("sandkeep none", "none", 1), ("sandkeep process", "process", 1)):
            results["throughput"][label] = timed(
                f"throughput {label} (5)",
                lambda k=kind, n=procs: throughput.run_config(api, tools, k, n, params["tp_sessions"],
                                                              params["tp_calls"], args.work))
        results["rss"] = {}
        for kind in ("sdk", "none", "process"):
            results["rss"][kind] = timed(f"worker RSS {kind} (7)",
                                         lambda k=kind: rss.run_kind(api, tools, k, params["rss_sessions"], args.work))
    finally:
        emulator.stop()
    results["search"] = timed("glob/grep (6)", lambda: search.run(
        args.tree, f"{args.work}/search", params["search_runs"], args.skbench, sys.executable, args.no_rg_path))
    results["search"]["tree"] = report.tree_size(args.tree)
    results["total_s"] = time.perf_counter() - started
    with open(f"{args.work}/results.json", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(report.render(results, args.command))
    log(f"wrote {args.out} (raw numbers: {args.work}/results.json) in {results['total_s']:.0f}s")


if __name__ == "__main__":
    main()
