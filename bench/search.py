"""Benchmark 6: glob and grep over a large real source tree.

The same jobs run through the SDK's tools in-process (once with no `rg` on PATH,
i.e. its built-in fallback, and once with `rg` if installed), through sandkeep's
`Toolset::call` (`skbench tools`), and, for grep, through the `rg` binary. Outputs
are compared after sorting their lines."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# Every job's full output stays under the tools' 102 400-character budget and 200
# glob results, so a difference in the outputs is a real difference in matches.
JOBS = [
    "grep:unsafe impl Send for",
    r"grep:Copyright \(c\) 20[0-9]{2}",
    r"grep:fn [a-z_]+_unchecked\(",
    "glob:**/build.rs",
    "glob:**/*.h",
]


def parse_series(stdout: str) -> dict[str, list[float]]:
    out = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            if "samples" in rec:
                out[rec["name"]] = rec["samples"]
    return out


def sorted_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return sorted(line for line in f.read().splitlines() if line)


def run_rg(rg: str, root: str, pattern: str, runs: int, out_path: str) -> list[float]:
    samples, text = [], b""
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([rg, "-n", "--no-heading", "-e", pattern, "--", root], capture_output=True)
        samples.append((time.perf_counter() - t0) * 1e6)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"rg failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
        text = proc.stdout
    with open(out_path, "wb") as f:
        f.write(text)
    return samples


def run(root: str, outdir: str, runs: int, skbench: str, python: str, no_rg_path: str) -> dict:
    """{"jobs": [...], "rg_on_path": bool} with median ms per implementation and equality checks."""
    rg = shutil.which("rg")
    impls: dict[str, dict[str, list[float]]] = {}

    def run_child(label: str, cmd: list[str], env: dict | None = None) -> None:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"{label} failed: {proc.stderr[-2000:]}")
        impls[label] = parse_series(proc.stdout)

    sdk = [python, os.path.join(HERE, "sdk_tools.py"), root]
    run_child("sdk_fallback", sdk + [f"{outdir}/sdk_fallback", str(runs), *JOBS],
              env=dict(os.environ, PATH=no_rg_path))
    if rg:
        run_child("sdk_rg", sdk + [f"{outdir}/sdk_rg", str(runs), *JOBS])
    run_child("sandkeep", [skbench, "tools", root, f"{outdir}/sandkeep", str(runs), *JOBS])

    jobs = []
    for i, job in enumerate(JOBS):
        tool, _, pattern = job.partition(":")
        row = {"job": job, "median_ms": {}, "lines": {}, "equal_to_sandkeep": {}}
        if rg and tool == "grep":
            os.makedirs(f"{outdir}/rg", exist_ok=True)
            impls.setdefault("rg", {})[f"rg_{i}"] = run_rg(rg, root, pattern, runs, f"{outdir}/rg/{i}.txt")
        mine = sorted_lines(f"{outdir}/sandkeep/{i}.txt")
        for label, series in impls.items():
            key = next((k for k in series if k.endswith(f"_{i}")), None)
            if key is None:
                continue
            row["median_ms"][label] = statistics.median(series[key]) / 1000
            lines = sorted_lines(f"{outdir}/{label}/{i}.txt")
            row["lines"][label] = len(lines)
            if label != "sandkeep":
                row["equal_to_sandkeep"][label] = lines == mine
                if lines != mine:
                    row.setdefault("diff", {})[label] = {
                        "only_sandkeep": sorted(set(mine) - set(lines))[:3],
                        "only_" + label: sorted(set(lines) - set(mine))[:3],
                    }
        jobs.append(row)
    return {"jobs": jobs, "rg": rg}
