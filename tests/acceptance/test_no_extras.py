"""The embedded tier needs no optional extra: the CLI, a sale and its audit run with the
drivers of PostgreSQL, MySQL, Redis and AWS (and the replay's plotting) made unimportable
in every process, and a backend that needs one names the extra to install."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import service_env

BLOCKED = ("psycopg", "psycopg_pool", "redis", "hiredis", "sqlalchemy", "pymysql", "boto3",
           "botocore", "matplotlib")  # fmt: skip
SITECUSTOMIZE = f"""
import sys

class _NoExtras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked: this test runs without the extras")
        return None

sys.meta_path.insert(0, _NoExtras())
"""


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a process (and its children) in which the extras are missing."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return service_env(PYTHONPATH=str(site), COLUMNS="200")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "eventpro", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)


def test_the_block_works(bare_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import psycopg"], capture_output=True, text=True, env=bare_env
    )
    assert done.returncode == 1 and "blocked" in done.stderr


def test_a_sale_and_its_audit_run_without_any_extra(bare_env: dict[str, str]) -> None:
    done = run(bare_env, "demo", "--buyers", "600", "--tickets", "100", "--concurrency", "32")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"oversold tickets\s*│\s*0\s*│", done.stdout), done.stdout
    assert "BROKEN" not in done.stdout


def test_a_backend_without_its_extra_names_it(bare_env: dict[str, str]) -> None:
    env = {**bare_env, "EVENTPRO_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}
    done = run(env, "migrate")
    assert done.returncode == 1
    assert "pip install 'eventpro[postgres]'" in done.stderr
