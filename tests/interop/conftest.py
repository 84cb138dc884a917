"""Starts one control-plane emulator for the interop tests.

The emulator is `sandkeep emulator --listen` when SANDKEEP_BIN points at a
sandkeep binary, else the crate's example (`cargo run -p sandkeep-emulator
--example emulator`). It prints `listening on http://ADDR` once bound.
"""

import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ADMIN_KEY = "sk-emu-admin"


def _command():
    binary = os.environ.get("SANDKEEP_BIN")
    if binary:
        return [binary, "emulator", "--listen", "127.0.0.1:0"]
    return ["cargo", "run", "--quiet", "-p", "sandkeep-emulator", "--example", "emulator",
            "--", "--listen", "127.0.0.1:0", "--admin-key", ADMIN_KEY]


@pytest.fixture(scope="session")
def emulator_url():
    process = subprocess.Popen(_command(), cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if "listening on " not in line:
            raise RuntimeError(f"emulator did not start (exit {process.poll()}): {line!r}")
        yield line.strip().split("listening on ", 1)[1].split()[0]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
