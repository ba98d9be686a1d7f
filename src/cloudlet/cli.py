"""``cloudlet serve | migrate | simulate <family> | admin ...``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path

from cloudlet.core.settings import ALL_FAMILIES, load_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cloudlet.app import create_app
    from cloudlet.core.migrate import upgrade

    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    if args.gateway_backend:
        overrides["gateway"] = {"backend": args.gateway_backend}
    settings = load_settings(**overrides)
    upgrade(settings)
    app = create_app(settings)
    print(f"Cloudlet on http://{settings.host}:{settings.port} (data in {settings.data_dir})")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=args.log_level,
        workers=None,
    )
    return 0


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
    token = admin_sub.add_parser("create-token", help="print a management API token")
    token.add_argument("username")
    token.add_argument("--name", default="cli")
    for p in (create, token):
        p.add_argument("--data-dir")
    admin.set_defaults(func=_admin)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
