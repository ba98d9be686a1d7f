"""``cloudlet serve | migrate | simulate <family> | admin ...``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import sys
from pathlib import Path
from typing import Any

from cloudlet.core.settings import ALL_FAMILIES, ConfigError, Settings, load_settings


def _serve(args: argparse.Namespace) -> int:
    from cloudlet.core.migrate import upgrade
    from cloudlet.core.observability import configure_logging

    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    settings = load_settings(**overrides)
    if args.gateway_backend:
        settings.gateway.backend = args.gateway_backend
    if args.gateway_port:
        settings.gateway.port = args.gateway_port
    configure_logging(json_logs=settings.log_json, level=args.log_level)
    upgrade(settings)
    from cloudlet.core.admin_cli import ensure_first_admin

    password = asyncio.run(ensure_first_admin(settings))
    if password is not None:
        print(f"First start: created admin user 'admin' with password {password} (shown once)")
    import uvloop

    return uvloop.run(_run_servers(settings, log_level=args.log_level))


async def _run_servers(settings: Settings, *, log_level: str) -> int:
    """The main app, and the gateway family on its own port when one is set."""
    import uvicorn

    from cloudlet.app import create_app
    from cloudlet.core.wire import server_config

    apps: list[tuple[str, int, Settings]] = []
    gateway_apart = "gateway" in settings.families and settings.gateway.port is not None
    if gateway_apart:
        rest = [f for f in settings.families if f != "gateway"]
        apps.append((settings.host, settings.port, settings.model_copy(update={"families": rest})))
        gateway_only = settings.model_copy(update={"families": ["gateway"]})
        apps.append((settings.host, settings.gateway.port or 0, gateway_only))
    else:
        apps.append((settings.host, settings.port, settings))
    for host, port, setting in _embedded_broker_ports(settings):
        probe = _listen(host, port)
        if probe is None:
            print(
                f"cloudlet: the embedded MQTT broker cannot listen on {host}:{port} (taken): "
                f"choose another with {setting}, or an external broker",
                file=sys.stderr,
                flush=True,
            )
            return 1
        probe.close()
    servers: list[Any] = []
    started: list[uvicorn.Server] = []
    for host, port, app_settings in apps:
        sock = _listen(host, port)
        if sock is None:
            setting = "--gateway-port" if app_settings.families == ["gateway"] else "--port"
            print(
                f"cloudlet: {host}:{port} is taken (another Cloudlet, or another program): "
                f"choose another with {setting} or CLOUDLET_PORT",
                file=sys.stderr,
                flush=True,
            )
            return 1
        app = create_app(app_settings)
        config = server_config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            trusted_proxies=settings.trusted_proxies,
        )
        server = uvicorn.Server(config)
        started.append(server)
        servers.append(server.serve(sockets=[sock]))
        print(
            f"Cloudlet {app_settings.families} on http://{host}:{port}",
            f"(data in {settings.data_dir})",
            flush=True,
        )
        if app_settings.families != ["gateway"]:
            print(
                f"Dashboard: http://{host}:{port}/console/ (user admin; its password is printed "
                "once, on the first start: `cloudlet admin set-password admin` sets a new one)",
                flush=True,
            )
        if "gateway" in app_settings.families and settings.gateway.otbr_rest_port:
            servers.extend(_otbr_rest_server(app.state.services, settings, log_level=log_level))
    await asyncio.gather(*servers, _freeze_startup_heap(started))
    return 0


async def _freeze_startup_heap(servers: list[Any]) -> None:
    """Once every server has started, leave what exists by then (modules, routes, models,
    the services) out of the garbage collector's full passes.

    Those passes walked the whole heap, ~300,000 objects, and stopped the event loop for
    100-200 ms every few seconds under load: the p99 of every family (bench/soak.py).
    """
    while not all(server.started for server in servers):
        if any(server.should_exit for server in servers):
            return
        await asyncio.sleep(0.05)
    gc.collect()
    gc.freeze()


def _embedded_broker_ports(settings: Settings) -> list[tuple[str, int, str]]:
    """The fixed ports the embedded MQTT brokers will listen on, with their setting."""
    found = []
    link, ha = settings.irrigation, settings.homeassistant
    if "irrigation" in settings.families and not link.mqtt_url and link.embedded_mqtt_port:
        name = "CLOUDLET_IRRIGATION__EMBEDDED_MQTT_PORT"
        found.append((link.embedded_mqtt_host, link.embedded_mqtt_port, name))
    if ha.enabled and not ha.mqtt_url and ha.embedded_mqtt_port:
        name = "CLOUDLET_HOMEASSISTANT__EMBEDDED_MQTT_PORT"
        found.append((ha.embedded_mqtt_host, ha.embedded_mqtt_port, name))
    return found


def _listen(host: str, port: int) -> Any:
    """A bound listening-ready socket for ``host:port``, or None when it is taken."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    return sock


def _otbr_rest_server(services: Any, settings: Settings, *, log_level: str) -> list[Any]:
    """The ot-br-posix REST API on its own port, beside the gateway family. A port that is
    taken (a real otbr-agent on this box, a second worker) costs only this API."""

    import uvicorn

    from cloudlet.core.wire import server_config
    from cloudlet.gateway.otbr_rest import OtbrRestApp

    host = settings.gateway.otbr_rest_host or settings.host
    port = settings.gateway.otbr_rest_port
    sock = _listen(host, port)
    if sock is None:
        print(f"OTBR REST API not served: {host}:{port} is not free", flush=True)
        return []
    print(f"OTBR REST API (Home Assistant's OTBR integration) on http://{host}:{port}", flush=True)
    config = server_config(
        OtbrRestApp(services),
        host=host,
        port=port,
        log_level=log_level,
        trusted_proxies=settings.trusted_proxies,
    )
    config.lifespan = "off"
    return [uvicorn.Server(config).serve(sockets=[sock])]


def _migrate(args: argparse.Namespace) -> int:
    from cloudlet.core.migrate import upgrade

    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    upgrade(load_settings(**overrides), args.revision)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"cloudlet.{args.family}.sim")
    code: int = module.main(args.rest)
    return code


def _admin(args: argparse.Namespace) -> int:
    from cloudlet.core.admin_cli import run_admin

    return asyncio.run(run_admin(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cloudlet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="apply migrations and run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir")
    serve.add_argument("--gateway-backend", choices=["simulated", "linux"])
    serve.add_argument("--gateway-port", type=int, help="serve the gateway family apart")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=_serve)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--data-dir")
    migrate.add_argument("--revision", default="heads")
    migrate.set_defaults(func=_migrate)

    simulate = sub.add_parser("simulate", help="run device simulators against a server")
    simulate.add_argument("family", choices=ALL_FAMILIES)
    simulate.add_argument("rest", nargs=argparse.REMAINDER)
    simulate.set_defaults(func=_simulate)

    admin = sub.add_parser("admin", help="manage Cloudlet's own admin users")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser("create-user")
    create.add_argument("username")
    create.add_argument("--password", help="prompted for when omitted")
    setpw = admin_sub.add_parser(
        "set-password", help="set (or reset) an admin's password and lift its lockout"
    )
    setpw.add_argument("username")
    setpw.add_argument("--password", help="prompted for when omitted")
    token = admin_sub.add_parser("create-token", help="print a management API token")
    token.add_argument("username")
    token.add_argument("--name", default="cli")
    for p in (create, setpw, token):
        p.add_argument("--data-dir")
    admin.set_defaults(func=_admin)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"cloudlet: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130  # Ctrl-C: the servers have shut down; no traceback
    return code


if __name__ == "__main__":
    sys.exit(main())
