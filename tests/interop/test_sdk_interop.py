"""The official Python SDK (2.10.0) against the sandkeep emulator, unchanged.

Run: /tmp/sdkvenv/bin/python -m pytest tests/interop -q
(optionally SANDKEEP_BIN=target/debug/sandkeep to use `sandkeep emulator`).
"""

import asyncio
import time

import json
import urllib.request

import anthropic

from conftest import ADMIN_KEY


def admin(emulator_url, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(emulator_url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def setup(client, emulator_url, **agent_args):
    environment = client.beta.environments.create(name="interop", config={"type": "self_hosted"})
    key = admin(emulator_url, "POST", f"/v1/emulator/environments/{environment.id}/keys")["key"]
    agent = client.beta.agents.create(name="interop-agent", model="claude-sonnet-4-5",
                                      tools=[{"type": "agent_toolset_20260401"}], **agent_args)
    return environment, key, agent


def test_operator_calls(emulator_url):
    client = anthropic.Anthropic(base_url=emulator_url, api_key=ADMIN_KEY)
    environment, key, agent = setup(client, emulator_url)
    assert environment.config.type == "self_hosted"
    assert client.beta.environments.retrieve(environment.id).name == "interop"
    assert any(e.id == environment.id for e in client.beta.environments.list())
    assert client.beta.agents.retrieve(agent.id).name == "interop-agent"

    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    assert session.status == "idle"
    assert session.agent.id == agent.id
    client.beta.sessions.events.send(session.id, events=[
        {"type": "user.message", "content": [{"type": "text", "text": "hello"}]}])
    events = list(client.beta.sessions.events.list(session.id, limit=1000))
    assert [e.type for e in events] == ["user.message"]
    assert events[0].id.startswith("sevt_")

    env_client = anthropic.Anthropic(base_url=emulator_url, auth_token=key, api_key=None)
    items = list(env_client.beta.environments.work.list(environment.id))
    assert [i.data.id for i in items] == [session.id]
    assert items[0].state == "queued"
    stats = client.beta.environments.work.stats(environment.id)
    assert (stats.depth, stats.pending) == (1, 0)

    work = client.beta.environments.work.retrieve(items[0].id, environment_id=environment.id)
    assert work.secret is None
    client.beta.environments.work.update(items[0].id, environment_id=environment.id, metadata={"k": "v"})
    client.beta.environments.work.stop(items[0].id, environment_id=environment.id, force=True)
    try:
        client.beta.environments.work.stop(items[0].id, environment_id=environment.id, force=True)
        raise AssertionError("second stop should conflict")
    except anthropic.APIStatusError as error:
        assert error.status_code == 409


SCENARIO = {"turns": [{
    "steps": [
        [{"name": "write", "input": {"file_path": "hello.txt", "content": "hello interop\n"},
          "expect": {"is_error": False}}],
        [{"name": "read", "input": {"file_path": "hello.txt"},
          "expect": {"is_error": False, "contains": ["hello interop"]}},
         {"name": "bash", "input": {"command": "cat hello.txt && echo bash-ok"},
          "expect": {"is_error": False, "contains": ["hello interop", "bash-ok"]}}],
        [{"name": "read", "input": {"file_path": "missing.txt"}, "expect": {"is_error": True}}],
        [{"name": "bash", "input": {"command": "cat skills/interop-skill/SKILL.md; ls -l skills/interop-skill/run.sh"},
          "expect": {"contains": ["skill body", "-rwxr-xr-x"]}}],
    ],
    "message": "all tools worked",
}]}


def test_sdk_environment_worker_serves_a_scripted_session(emulator_url, tmp_path):
    client = anthropic.Anthropic(base_url=emulator_url, api_key=ADMIN_KEY)
    skill = admin(emulator_url, "POST", "/v1/emulator/skills", {
        "name": "interop-skill", "files": {"SKILL.md": "skill body\n", "run.sh": "echo run\n"}})
    environment, key, agent = setup(client, emulator_url, skills=[
        {"type": "custom", "skill_id": skill["skill_id"], "version": "latest"}])
    session = admin(emulator_url, "POST", "/v1/emulator/sessions", {
        "agent": agent.id, "environment_id": environment.id, "scenario": SCENARIO})
    client.beta.sessions.events.send(session["id"], events=[
        {"type": "user.message", "content": [{"type": "text", "text": "use the tools"}]}])

    async def run_worker():
        async_client = anthropic.AsyncAnthropic(base_url=emulator_url, api_key=ADMIN_KEY)
        worker = async_client.beta.environments.work.worker(
            environment_id=environment.id, environment_key=key, workdir=str(tmp_path), max_idle=1.0)
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                items = list(anthropic.Anthropic(base_url=emulator_url, auth_token=key, api_key=None)
                             .beta.environments.work.list(environment.id))
                if items and items[0].state == "stopped":
                    return items[0]
                if task.done():
                    task.result()
            raise AssertionError("the SDK worker did not finish the session in 60 s")
        finally:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    work = asyncio.run(run_worker())
    assert work.stopped_at is not None
    assert (tmp_path / "hello.txt").read_text() == "hello interop\n"
    report = admin(emulator_url, "GET", f"/v1/emulator/sessions/{session['id']}/scenario")
    assert report["complete"], report
    assert report["passed"], report["failures"]
    assert len(report["results"]) == 5
    events = list(client.beta.sessions.events.list(session["id"], limit=1000))
    assert events[-1].type == "session.status_idle"
    assert events[-1].stop_reason.type == "end_turn"
