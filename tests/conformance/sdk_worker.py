"""Serve one environment with the official SDK's EnvironmentWorker (the reference target).

Usage: python sdk_worker.py BASE_URL ENVIRONMENT_ID ENVIRONMENT_KEY WORKDIR

Runs until killed. Uses the SDK's default `agent_toolset_20260401` tools, `max_idle=None`
(the session ends only on `session.status_terminated`), and `workdir` as the shared
working directory of every session, like `ant beta:worker poll --workdir`.
"""

from __future__ import annotations

import asyncio
import sys

import anthropic


async def main(base_url: str, environment_id: str, environment_key: str, workdir: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=base_url, max_retries=2)
    worker = client.beta.environments.work.worker(
        environment_id=environment_id,
        environment_key=environment_key,
        workdir=workdir,
        max_idle=None,
    )
    await worker.run()


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: sdk_worker.py BASE_URL ENVIRONMENT_ID ENVIRONMENT_KEY WORKDIR")
    print(f"sdk worker: anthropic {anthropic.__version__}", flush=True)
    asyncio.run(main(*sys.argv[1:]))
