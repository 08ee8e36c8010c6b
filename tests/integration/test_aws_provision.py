"""Provisioning the AWS tier: `eventpro aws provision` on the emulator, and the
CloudFormation template for a real account, checked by cfn-lint."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from tests.aws_support import REGION
from tests.support import service_env

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.dynamodb]


def _provision(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventpro", "aws", "provision"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_provision_creates_the_tables_and_is_safe_twice(aws_emulator: str) -> None:
    prefix = f"prov-{uuid.uuid4().hex[:8]}"
    url = f"dynamodb://{prefix}?region={REGION}&endpoint={aws_emulator}"
    env = service_env(EVENTPRO_DATABASE_URL=url)
    first, second = _provision(env), _provision(env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"table {prefix}-inventory: created",
        f"table {prefix}-line: created",
    ]
    assert second.returncode == 0, second.stderr
    assert "exists" in second.stdout and "created" not in second.stdout
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=aws_emulator)
    ttl = client.describe_time_to_live(TableName=f"{prefix}-line")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at" and ttl["TimeToLiveStatus"] == "ENABLED"
    for role in ("inventory", "line"):
        client.delete_table(TableName=f"{prefix}-{role}")


def test_provision_without_a_dynamodb_url_says_so() -> None:
    env = service_env(EVENTPRO_DATABASE_URL="sqlite:///nowhere.db")
    refused = _provision(env)
    assert refused.returncode == 1
    assert "dynamodb://" in refused.stderr


def test_the_cloudformation_template_passes_cfn_lint() -> None:
    linter = Path(sys.executable).with_name("cfn-lint")
    checked = subprocess.run(
        [str(linter), str(ROOT / "deploy" / "aws" / "eventpro.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
