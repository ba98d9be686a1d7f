"""``cloudlet admin create-user``, ``set-password`` and ``create-token``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from cloudlet.core.auth import AdminExists, create_admin, issue_token, set_password
from cloudlet.core.clock import SystemClock
from cloudlet.core.db import Database
from cloudlet.core.migrate import upgrade
from cloudlet.core.models import AdminUser
from cloudlet.core.security import new_token
from cloudlet.core.settings import Settings, load_settings


def safe_url(url: str) -> str:
    """A database URL to print: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


async def run_admin(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    settings = load_settings(**overrides)
    # Run from another folder, the default SQLite file would be a new, empty one: say which.
    print(f"database: {safe_url(settings.resolved_database_url)}", file=sys.stderr)
    # Alembic's env.py runs its own event loop: not inside this one.
    await asyncio.to_thread(upgrade, settings)
    db = Database(settings.resolved_database_url)
    clock = SystemClock()
    try:
        async with db.session() as session:
            if args.admin_command == "create-user":
                password = args.password or getpass.getpass("password: ")
                try:
                    await create_admin(
                        session, clock=clock, username=args.username, password=password
                    )
                except AdminExists:
                    print(f"user {args.username!r} exists")
                    return 1
                await session.commit()
                print(f"created {args.username}")
                return 0
            if args.admin_command == "set-password":
                password = args.password or getpass.getpass("new password: ")
                if not await set_password(session, username=args.username, password=password):
                    print(f"no user {args.username!r}")
                    return 1
                await session.commit()
                print(f"password of {args.username} set (its lockout, if any, is lifted)")
                return 0
            user = await session.scalar(
                select(AdminUser).where(AdminUser.username == args.username)
            )
            if user is None:
                print(f"no user {args.username!r}")
                return 1
            token = await issue_token(session, clock=clock, user=user, name=args.name)
            await session.commit()
            print(token)
            return 0
    finally:
        await db.dispose()


async def ensure_first_admin(settings: Settings) -> str | None:
    """On a first start with no admin at all, create ``admin`` and return its password once."""
    db = Database(settings.resolved_database_url)
    clock = SystemClock()
    try:
        async with db.session() as session:
            if await session.scalar(select(AdminUser.id).limit(1)) is not None:
                return None
            password = new_token(20)
            try:
                await create_admin(session, clock=clock, username="admin", password=password)
                await session.commit()
            except (AdminExists, IntegrityError):
                return None  # another worker starting at the same moment made it first
            return password
    finally:
        await db.dispose()
