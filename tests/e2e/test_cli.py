"""The console script and `python -m signaling`: a real process, a real port."""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import jwt

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
UROK = Path(sys.executable).with_name("urok")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(UROK), *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


def test_urok_token_mints_access_and_admin_tokens() -> None:
    out = run_cli("token", "--dev", "--room", "R1", "--identity", "u7", "--name", "Пётр", "--role", "host",
                  "--registered")
    assert out.returncode == 0, out.stderr
    claims = jwt.decode(out.stdout.strip(), "devsecret", algorithms=["HS256"])
    assert (claims["room"], claims["sub"], claims["role"], claims["registered"]) == ("R1", "u7", "host", True)
    admin = run_cli("token", "--dev", "--admin")
    assert jwt.decode(admin.stdout.strip(), "devsecret", algorithms=["HS256"])["admin"] is True
    url = run_cli("token", "--dev", "--room", "R1", "--identity", "u7", "--url")
    assert url.stdout.startswith("http://127.0.0.1:8080/join/R1?token=")


def test_urok_token_refuses_a_lifetime_past_the_maximum() -> None:
    out = run_cli("token", "--dev", "--room", "R1", "--identity", "u", "--ttl", str(8 * 24 * 3600))
    assert out.returncode == 2 and "token_max_ttl_s" in out.stderr and not out.stdout
    short = run_cli("token", "--dev", "--admin", "--ttl", "7200", env={"UROK_TOKEN_MAX_TTL_S": "3600",
                                                                      "UROK_TOKEN_TTL_S": "600"})
    assert short.returncode == 2 and "3600" in short.stderr
    ok = run_cli("token", "--dev", "--room", "R1", "--identity", "u", "--ttl", "3600",
                 env={"UROK_TOKEN_MAX_TTL_S": "3600", "UROK_TOKEN_TTL_S": "600"})
    claims = jwt.decode(ok.stdout.strip(), "devsecret", algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600


def test_urok_token_without_keys_explains_what_is_missing() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UROK_")}
    out = subprocess.run([str(UROK), "token", "--room", "R", "--identity", "u"], capture_output=True,
                         text=True, timeout=30, env=env)
    assert out.returncode == 2 and "UROK_API_KEY" in out.stderr


def test_serve_without_keys_refuses_to_start_and_says_why() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UROK_")}
    out = subprocess.run([str(UROK), "serve", "--port", str(free_port())], capture_output=True, text=True,
                         timeout=30, env=env)
    assert out.returncode == 2 and "--dev" in out.stderr


def test_unknown_key_in_config_file_stops_the_server(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("prot = 8080\n")
    out = run_cli("serve", "--dev", "--config", str(cfg))
    assert out.returncode == 2 and "unknown setting 'prot'" in out.stderr


async def _dev_server(cwd: Path, port: int, **settings: str) -> tuple[asyncio.subprocess.Process, str]:
    """`python -m signaling --dev` in ``cwd`` (its ./data is the test's own), up to the banner's links."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UROK_")}
    env.update(UROK_RTC_UDP_PORT="0", PYTHONPATH=str(ROOT), **settings)  # any free media port: tests run beside others
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling", "--dev", "--port", str(port), cwd=str(cwd),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
    text = ""
    assert proc.stdout is not None
    while "join (student)" not in text:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line:
            await proc.wait()
            raise AssertionError(f"server exited: {text}")
        text += line.decode()
    return proc, text


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
    await asyncio.wait_for(proc.wait(), 15)
    assert proc.returncode == 0


async def test_python_m_signaling_dev_prints_keys_admin_token_and_a_working_join_link(tmp_path: Path) -> None:
    port = free_port()
    proc, text = await _dev_server(tmp_path, port)
    try:
        assert "API key     devkey" in text and "API secret  devsecret" in text
        assert "SQLite file data/urok.sqlite3" in text and (tmp_path / "data" / "urok.sqlite3").is_file()
        admin = re.search(r"admin token (\S+)", text)
        link = re.search(r"join \(student\) (\S+)", text)
        assert admin and link
        async with aiohttp.ClientSession() as http:
            async with http.get(link.group(1)) as r:
                assert r.status == 200 and "<html" in await r.text()
            async with http.get(f"http://127.0.0.1:{port}/v1/rooms",
                                headers={"Authorization": f"Bearer {admin.group(1)}"}) as r:
                rooms = await r.json()
                assert rooms["total"] == 1 and rooms["rooms"][0]["name"] == "Demo lesson"
            token = link.group(1).split("token=")[1]
            async with http.ws_connect(f"ws://127.0.0.1:{port}/v1/rtc?token={token}") as ws:
                welcome = await ws.receive_json(timeout=10)
                assert welcome["event"] == "welcome" and welcome["state"] == "joined"
    finally:
        await _stop(proc)


async def test_dev_demo_room_and_its_links_survive_a_restart_on_the_sqlite_file(tmp_path: Path) -> None:
    port = free_port()
    proc, first = await _dev_server(tmp_path, port)
    await _stop(proc)
    proc, second = await _dev_server(tmp_path, port)  # the same ./data: the same demo room, not a second one
    try:
        room = re.search(r"demo room   (\S+)", first)
        assert room and f"demo room   {room.group(1)}" in second
        link = re.search(r"join \(student\) (\S+)", first)  # the link printed before the restart
        admin = re.search(r"admin token (\S+)", second)
        assert link and admin
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/v1/rooms",
                                headers={"Authorization": f"Bearer {admin.group(1)}"}) as r:
                assert (await r.json())["total"] == 1
            token = link.group(1).split("token=")[1]
            async with http.ws_connect(f"ws://127.0.0.1:{port}/v1/rtc?token={token}") as ws:
                welcome = await ws.receive_json(timeout=10)
                assert welcome["event"] == "welcome" and welcome["state"] == "joined"
    finally:
        await _stop(proc)


async def test_serve_without_migrate_on_start_refuses_an_old_schema_until_urok_db_upgrade(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UROK_")}
    env.update(UROK_MIGRATE_ON_START="false", UROK_RTC_UDP_PORT="0")

    def urok(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(UROK), *args], capture_output=True, text=True, timeout=30, env=env, cwd=tmp_path)

    refused = await asyncio.to_thread(urok, "serve", "--dev", "--port", str(free_port()))
    assert refused.returncode == 2 and "run `urok db upgrade`" in refused.stderr, refused.stderr
    up = await asyncio.to_thread(urok, "db", "upgrade")
    assert up.returncode == 0 and "upgraded the schema from revision none (empty) to" in up.stdout, up.stderr
    again = await asyncio.to_thread(urok, "db", "upgrade")
    assert again.returncode == 0 and "the schema is current" in again.stdout
    proc, text = await _dev_server(tmp_path, free_port(), UROK_MIGRATE_ON_START="false")
    await _stop(proc)
    assert "demo room" in text
