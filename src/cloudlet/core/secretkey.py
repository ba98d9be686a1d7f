"""The key for secrets at rest: from settings, or generated once into the data folder."""

from __future__ import annotations

import os
import secrets

from cloudlet.core.settings import Settings


def resolve_secret_key(settings: Settings) -> str:
    """Settings' key, else data_dir/secret.key (created 0600 on first use)."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    # O_EXCL: two workers starting at once agree on whichever key was written first.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
