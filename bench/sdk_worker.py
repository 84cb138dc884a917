"""Serve one environment with the official SDK's EnvironmentWorker.

Usage: python sdk_worker.py BASE_URL ENVIRONMENT_ID ENVIRONMENT_KEY WORKDIR MAX_IDLE_SECONDS|none
Runs until killed (a benchmark peer, not part of sandkeep)."""

from __future__ import annotations

import asyncio
import sys

import anthropic


async def main(base_url: str, environment_id: str, environment_key: str, workdir: str, max_idle: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key="sk-emu-admin")
    worker = client.beta.environments.work.worker(
        environment_id=environment_id,
        environment_key=environment_key,
        workdir=workdir,
        max_idle=None if max_idle == "none" else float(max_idle),
    )
    await worker.run()


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit("usage: sdk_worker.py BASE_URL ENVIRONMENT_ID ENVIRONMENT_KEY WORKDIR MAX_IDLE_SECONDS|none")
    asyncio.run(main(*sys.argv[1:]))
