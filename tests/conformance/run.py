#!/usr/bin/env python3
"""Differential conformance runner: the SDK 2.10.0 worker vs sandkeep, case by case.

Plays every case of ``corpus.json`` through each target worker (see targets.py) in one
long emulator session per target, compares each sandkeep target's results with the SDK's,
writes ``docs/conformance.md`` and prints ``conformance: N passed, M failed``.
Exit status: 0 when nothing failed, 1 on failures, 2 when the run itself could not start.

Standard library only (the SDK target needs ``anthropic`` in the interpreter given by
``--python``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from compare import FAILED, classify, normalize, short_diff  # noqa: E402
from emulator import Api, CallTimeout, EmulatorError, EmulatorProcess, SessionDriver  # noqa: E402
from fixtures import FixtureBuilder, FixtureError  # noqa: E402
from report import compat_anchors, write_report  # noqa: E402
from targets import ALL_TARGETS, Target, can_hide_ripgrep, make_workdir, ripgrep_binaries  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
TOOLS = ("bash", "read", "write", "edit", "glob", "grep")


class CorpusError(ValueError):
    """corpus.json is malformed; the message names the case and the field."""


def load_corpus(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        cases = json.load(fh)["cases"]
    seen: set[str] = set()
    for index, case in enumerate(cases):
        where = f"case #{index} ({case.get('id', '?')})"
        if not isinstance(case.get("id"), str) or case["id"] in seen:
            raise CorpusError(f"{where}: id must be a unique string")
        seen.add(case["id"])
        if case.get("tool") not in TOOLS:
            raise CorpusError(f"{where}: tool must be one of {', '.join(TOOLS)}")
        calls = case.get("calls")
        if not isinstance(calls, list) or not calls:
            raise CorpusError(f"{where}: calls must be a non-empty list")
        for call in calls:
            if call.get("name") not in TOOLS or not isinstance(call.get("input"), dict):
                raise CorpusError(f"{where}: each call needs name (a tool) and input (an object)")
        if not isinstance(case.get("fixture", []), list):
            raise CorpusError(f"{where}: fixture must be a list of entries")
        dev = case.get("deviation")
        if dev is not None and not isinstance(dev, str):
            if not isinstance(dev, dict) or not set(dev) <= {"none", "process"}:
                raise CorpusError(f"{where}: deviation must be an anchor id or a map with keys none/process")
        if not isinstance(case.get("normalize", []), list):
            raise CorpusError(f"{where}: normalize must be a list of hints")
    return cases


def substitute(value: object, workdir: str) -> object:
    """Replace ``<WORKDIR>`` in every string of a tool input with the target's visible workdir."""
    if isinstance(value, str):
        return value.replace("<WORKDIR>", workdir)
    if isinstance(value, list):
        return [substitute(v, workdir) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, workdir) for k, v in value.items()}
    return value


def play(target: Target, driver: SessionDriver, cases: list[dict], args, results: dict) -> None:
    """Run every case on one target, in order, in its one session."""
    builder = FixtureBuilder(target.workdir, target.outside, target.visible_workdir)
    first_call = True

    def worker_gone() -> str | None:
        rc = target.exited()
        return None if rc is None else f"worker exited with status {rc}; see {target.log_path}"

    for case in cases:
        gone = worker_gone()
        if gone:
            results[case["id"]] = [{"missing": gone}]
            continue
        try:
            # A fresh shell per case, so cwd/variables/jobs do not leak (not compared).
            timeout = args.startup_timeout if first_call else args.call_timeout
            driver.call("bash", {"restart": True}, timeout, worker_gone)
            first_call = False
            builder.reset()
            builder.build(case.get("fixture", []))
        except (CallTimeout, EmulatorError, FixtureError, OSError) as err:
            results[case["id"]] = [{"missing": f"case setup failed: {err}"}]
            continue
        out = []
        for call in case["calls"]:
            try:
                tool_input = substitute(call["input"], target.visible_workdir)
                out.append(driver.call(call["name"], tool_input, args.call_timeout, worker_gone))
            except (CallTimeout, EmulatorError) as err:
                out.append({"missing": str(err)})
        results[case["id"]] = out


def sdk_version(python: str) -> str:
    try:
        return subprocess.run(
            [python, "-c", "import anthropic; print(anthropic.__version__)"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError) as err:
        raise SystemExit(f"conformance: cannot import anthropic with {python} ({err}); pass --python or set SANDKEEP_PYTHON")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default=os.path.join(HERE, "corpus.json"))
    p.add_argument("--report", default=os.path.join(REPO, "docs", "conformance.md"))
    p.add_argument("--compat", default=os.path.join(REPO, "docs", "compat.md"))
    p.add_argument("--targets", default=",".join(ALL_TARGETS), help="comma-separated subset of sdk,none,process")
    p.add_argument("--only", help="regex: run only cases whose id matches (no report is written)")
    p.add_argument("--sandkeep-bin", default=os.environ.get("SANDKEEP_BIN", ""))
    p.add_argument("--python", default=os.environ.get("SANDKEEP_PYTHON", sys.executable), help="python with anthropic==2.10.0")
    p.add_argument("--emulator-cmd", help="command that starts the emulator (default: SANDKEEP_BIN emulator --listen 127.0.0.1:0)")
    p.add_argument("--call-timeout", type=float, default=60.0)
    p.add_argument("--startup-timeout", type=float, default=180.0)
    p.add_argument("--results-json", help="also dump the raw results here")
    p.add_argument("--keep", action="store_true", help="keep the work directories and logs")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    targets_wanted = [t for t in args.targets.split(",") if t]
    if "sdk" not in targets_wanted or not set(targets_wanted) <= set(ALL_TARGETS):
        raise SystemExit("conformance: --targets must include sdk (the reference) and only sdk,none,process")
    cases = load_corpus(args.corpus)
    if args.only:
        cases = [c for c in cases if re.search(args.only, c["id"])]
    needs_sandkeep = any(t != "sdk" for t in targets_wanted) or not args.emulator_cmd
    if needs_sandkeep and not (args.sandkeep_bin and os.access(args.sandkeep_bin, os.X_OK)):
        raise SystemExit("conformance: sandkeep binary not found; pass --sandkeep-bin or set SANDKEEP_BIN")
    version = sdk_version(args.python)
    rg_found = ripgrep_binaries()
    if not rg_found:
        rg = ""
    elif can_hide_ripgrep():
        rg = f"found ({', '.join(rg_found)}) but hidden from the SDK worker (private mount namespace), so its grep uses the Python fallback"
    else:
        rg = f"found ({', '.join(rg_found)}) and could not be hidden (needs root and unshare)"
    scratch = tempfile.mkdtemp(prefix="sandkeep-conformance-")
    emulator_cmd = args.emulator_cmd.split() if args.emulator_cmd else [args.sandkeep_bin, "emulator", "--listen", "127.0.0.1:0"]
    started = time.monotonic()
    emu = EmulatorProcess(emulator_cmd, os.path.join(scratch, "emulator.log"))
    targets: list[Target] = []
    results: dict[str, dict] = {}
    try:
        api = Api(emu.base_url)
        agent_id = api.create_agent("conformance")
        threads = []
        for name in targets_wanted:
            workdir, outside = make_workdir()
            target = Target(name, workdir, outside, os.path.join(scratch, f"worker-{name}.log"))
            targets.append(target)
            environment_id = api.create_environment(f"conformance-{name}")
            key = api.mint_environment_key(environment_id)
            target.start(target.command(emu.base_url, environment_id, key, args.sandkeep_bin, args.python))
            target.session_id = api.create_session(environment_id, agent_id)
            results[name] = {}
            driver = SessionDriver(api, target.session_id)
            thread = threading.Thread(target=play, args=(target, driver, cases, args, results[name]), daemon=True)
            threads.append(thread)
            thread.start()
        for thread in threads:
            thread.join()
        for target in targets:
            try:
                SessionDriver(api, target.session_id).terminate()
            except EmulatorError as err:
                print(f"conformance: could not terminate the {target.name} session: {err}", file=sys.stderr)
    finally:
        for target in targets:
            target.stop()
        emu.stop()
    elapsed = time.monotonic() - started

    if args.results_json:
        with open(args.results_json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1, ensure_ascii=False)
    anchors = compat_anchors(args.compat)
    compared = [t for t in targets_wanted if t != "sdk"]
    by_name = {t.name: t for t in targets}
    outcomes = {}
    passed = failed = 0
    for case in cases:
        hints = case.get("normalize", [])
        sdk_t = by_name["sdk"]
        ref = [normalize(r, sdk_t.visible_workdir, sdk_t.outside, hints) for r in results["sdk"].get(case["id"], [])]
        for name in compared:
            t = by_name[name]
            got = [normalize(r, t.visible_workdir, t.outside, hints) for r in results[name].get(case["id"], [])]
            reference_ok = all("missing" not in r for r in ref)
            status, detail = classify(case, name, ref == got and reference_ok, anchors)
            if not reference_ok:
                status, detail = FAILED, "the SDK reference produced no result"
            diff = "" if ref == got else short_diff(case["calls"], ref, got)
            outcomes[(case["id"], name)] = (status, detail, diff)
            if status == FAILED:
                failed += 1
                print(f"FAIL {case['id']} [{name}]: {detail}\n{diff}\n", file=sys.stderr)
            else:
                passed += 1
    if not args.only:
        notes = []
        if rg_found and not can_hide_ripgrep():
            notes.append("The SDK's grep used ripgrep, not its fallback: grep results are not comparable in this run.")
        meta = {
            "sdk_version": version, "rg": rg, "passed": passed, "failed": failed,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "notes": notes,
        }  # fmt: skip
        write_report(args.report, meta, cases, outcomes, compared)
    if args.keep:
        print(f"conformance: logs and work directories kept under {scratch} and /tmp/kc*", file=sys.stderr)
    else:
        for target in targets:
            shutil.rmtree(target.workdir, ignore_errors=True)
            shutil.rmtree(target.outside, ignore_errors=True)
        if failed == 0:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"conformance: worker and emulator logs in {scratch}", file=sys.stderr)
    print(f"conformance: {len(cases)} cases on {', '.join(targets_wanted)} in {elapsed:.0f}s")
    print(f"conformance: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (CorpusError, EmulatorError, FixtureError) as err:
        print(f"conformance: {err}", file=sys.stderr)
        sys.exit(2)
