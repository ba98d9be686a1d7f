"""The servers a benchmark compares, each a child process on a free port of 127.0.0.1.

* Cloudlet as ``cloudlet serve`` runs it (its own uvicorn protocol, uvloop).
* The bare ASGI endpoint: uvicorn with uvloop and httptools, reading the request as the
  Cloudlet endpoint must (the JSON body, or the query) and answering a body of the same shape.
* Starlette's StaticFiles serving a folder, under the same uvicorn.
* nginx serving that folder with sendfile, or in front of Cloudlet (``X-Accel-Redirect``).

    python bench/servers.py bare PORT | static PORT FOLDER     (what the children run)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

ROOT = Path(__file__).resolve().parents[1]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def child(
    command: list[str], port: int, folder: Path, env: dict[str, str] | None = None
) -> Iterator[int]:
    """``command`` running until the block ends; yields ``port`` once it accepts."""
    with child_process(command, port, folder, env):
        yield port


@contextlib.contextmanager
def child_process(
    command: list[str], port: int, folder: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """:func:`child`, yielding the process (for its pid: memory, CPU, signals)."""
    log_path = folder / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_listening(port, process, log_path)
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_listening(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def bare(folder: Path) -> contextlib.AbstractContextManager[int]:
    port = free_port()
    return child([sys.executable, __file__, "bare", str(port)], port, folder)


def static(folder: Path, files: Path) -> contextlib.AbstractContextManager[int]:
    port = free_port()
    return child([sys.executable, __file__, "static", str(port), str(files)], port, folder)


def cloudlet(
    folder: Path, data_dir: Path, env: dict[str, str], port: int
) -> contextlib.AbstractContextManager[int]:
    return child(*cloudlet_command(folder, data_dir, env, port))


def cloudlet_command(
    folder: Path, data_dir: Path, env: dict[str, str], port: int
) -> tuple[list[str], int, Path, dict[str, str]]:
    """:func:`child`'s arguments for ``cloudlet serve``."""
    command = [
        str(Path(sys.executable).with_name("cloudlet")),
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return command, port, folder, {"CLOUDLET_SECRET_KEY": "bench", **env}


def granian(
    folder: Path, app: str, port: int, *, workers: int = 1, env: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[int]:
    """``app`` (module:factory) under granian with uvloop."""
    command = [
        str(Path(sys.executable).with_name("granian")),
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--factory",
        app,
    ]
    return child(command, port, folder, {"PYTHONPATH": str(ROOT / "bench"), **(env or {})})


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise SystemExit("nginx is not installed: apt-get install nginx (make bench does this)")
    return found


def nginx(folder: Path, site: str) -> contextlib.AbstractContextManager[int]:
    """nginx with one ``server`` block (``site``, whose ``listen`` is filled in)."""
    port = free_port()
    home = folder / f"nginx-{port}"
    home.mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(
        f"{kind}_temp_path {home}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (home / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {home}/nginx.pid;\n"
        f"error_log {home}/error.log warn;\nevents {{ worker_connections 4096; }}\n"
        f"http {{\naccess_log off;\n{temp}{site.replace('LISTEN', f'127.0.0.1:{port}')}\n}}\n"
    )
    return child([nginx_binary(), "-p", f"{home}/", "-c", str(home / "nginx.conf")], port, folder)


# --- what the children run -----------------------------------------------------------------


async def _read_body(receive: Receive) -> bytes:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Parse the JSON body (or the query), answer a JSON object made from it."""
    if scope["type"] != "http":
        return
    body = await _read_body(receive)
    fields = orjson.loads(body) if body else dict(parse_qsl(scope["query_string"].decode()))
    answer = orjson.dumps(
        {"code": 200, "errorCode": 0, "errno": 0, "text": "success", "n": len(fields)}
    )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(answer)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer})


def _uvicorn(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        backlog=4096,
    )


def bare_factory() -> Any:
    """The bare endpoint as a factory (granian --factory servers:bare_factory)."""
    return bare_app


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "bare":
        _uvicorn(bare_app, port)
    elif kind == "static":
        from starlette.applications import Starlette
        from starlette.staticfiles import StaticFiles

        app = Starlette()
        app.mount("/", StaticFiles(directory=sys.argv[3]))
        _uvicorn(app, port)


if __name__ == "__main__":
    main()
