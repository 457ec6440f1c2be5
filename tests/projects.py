"""Users' projects made as their frameworks' tools make them, for tests to serve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import clean_environ


def make_django_project(directory: Path) -> Path:
    """``django-admin startproject mysite`` in ``directory``, made ready for production: DEBUG
    off, its hosts allowed, the static files collected into ``staticfiles``, the database
    migrated."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(directory)], check=True
    )
    settings = directory / "mysite" / "settings.py"
    text = settings.read_text().replace("DEBUG = True", "DEBUG = False")
    text = text.replace("ALLOWED_HOSTS = []", 'ALLOWED_HOSTS = ["127.0.0.1", "localhost"]')
    settings.write_text(text + '\nSTATIC_ROOT = BASE_DIR / "staticfiles"\n')
    environ = clean_environ() | {"DJANGO_SETTINGS_MODULE": "mysite.settings"}
    manage = [sys.executable, "manage.py"]
    for command in (["collectstatic", "--noinput"], ["migrate", "--noinput"]):
        subprocess.run(
            [*manage, *command], check=True, cwd=directory, env=environ, stdout=subprocess.DEVNULL
        )
    return directory


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match is not None, page[:500]
    return match[1]
