"""`eventpro bench --compare REV`: this build's server against another revision's, in
the same minutes, on the same machine.

A change worth a few µs a request is smaller than what separates two runs of any bench
on this shared machine an hour apart, so two builds are only compared side by side: one
server of each, each on fresh backends of the tier and migrated by its own code, loaded
in turn by `wrk` for `duration` seconds (polls of distinct purchases, then admissions),
the order swapped every round. Each measure is the server process's CPU time per
answer; each round gives the ratio this / other, and the ratios' median and range are
the comparison. The other revision's `src/` is taken from git (`git archive`) and put
first on its server's `PYTHONPATH`; the installed dependencies are this build's.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventpro.bootstrap import Servers, Tier, fresh_backends
from eventpro.cli.bench_loadgen import wrk_path
from eventpro.cli.bench_polls import CONNECTIONS, POLLED, polls_then_admissions
from eventpro.loadtest.client import (
    admitted_ids,
    create_event,
    one_section_event,
    one_ticket_buyers,
)
from eventpro.loadtest.process import free_port, served

MEASURES = ("poll", "admission")
REPO = Path(__file__).resolve().parents[3]  # the checkout this build runs from
STOCK = 10_000_000  # the most a section may hold: nothing is decided, so never sold out
MAX_LINE = 50_000_000  # room for every round's admissions: past it they would be 429s


class CompareError(Exception):
    """The other revision cannot be taken or served (the message says why)."""


@dataclass(frozen=True)
class Build:
    """One build under load: its server, and the purchases its polls read."""

    label: str
    imports: str  # the path its server imports eventpro from
    base: str
    pid: int
    event_id: str
    purchase_ids: list[str]


def measure(rev: str, tier: Tier, servers: Servers, rounds: int, duration: float) -> dict[str, Any]:
    wrk = wrk_path()
    this_commit = _this_commit()
    workdir = Path(tempfile.mkdtemp(prefix="eventpro-compare-"))
    try:
        other_src, other_commit = _other_source(rev, workdir)
        with ExitStack() as stack:
            this = stack.enter_context(_build("this", tier, servers, workdir, None))
            other = stack.enter_context(_build("other", tier, servers, workdir, other_src))
            every = [
                _round(wrk, (this, other) if n % 2 else (other, this), duration)
                for n in range(rounds)
            ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "backend": tier.value,
        "this": this_commit,
        "other": {"rev": rev, "commit": other_commit},
        "imports": {"this": this.imports, "other": other.imports},
        "duration_s": duration,
        "connections": CONNECTIONS,
        "rounds": every,
    }


def _round(wrk: str, order: tuple[Build, Build], duration: float) -> dict[str, Any]:
    """Each build's polls then admissions, in `order`; and this build's CPU per answer
    over the other's, for each measure."""
    measured: dict[str, Any] = {"first": order[0].label}
    for build in order:
        try:
            polls, admissions = polls_then_admissions(
                wrk, build.base, build.pid, build.event_id, (build.purchase_ids,), duration
            )
        except RuntimeError as exc:  # answers that were not 2xx
            raise CompareError(f"{build.label}: {exc}") from exc
        measured[build.label] = {"poll": polls, "admission": admissions}
    measured["cpu_ratio"] = {
        name: round(
            measured["this"][name]["cpu_us"] / (measured["other"][name]["cpu_us"] or 1.0), 3
        )
        for name in MEASURES
    }
    return measured


@contextmanager
def _build(
    label: str, tier: Tier, servers: Servers, workdir: Path, src: Path | None
) -> Iterator[Build]:
    """A server of this build (`src` None) or of the `src` tree, on fresh backends, with an
    event and `POLLED` purchases in its line."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(src), env.get("PYTHONPATH"))))
    imports = _imports(env)
    # an installed package found before PYTHONPATH would make both servers this build
    if src is not None and not Path(imports).resolve().is_relative_to(src.resolve()):
        raise CompareError(f"the other build's server would import {imports!r}")
    with fresh_backends(tier, servers, workdir) as backends, ExitStack() as stack:
        token = secrets.token_urlsafe(24)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env |= {
            "EVENTPRO_DATABASE_URL": backends.database_url,
            "EVENTPRO_QUEUE_URL": backends.queue_url,
            "EVENTPRO_ADMIN_TOKEN": token,
            "EVENTPRO_MAX_LINE": str(MAX_LINE),
        }
        args = ["eventpro", "serve", "--port", str(port), "--workers", "0"]
        log = workdir / f"{label}.log"
        try:
            server = stack.enter_context(served(args, env, f"{base}/healthz", log))
        except RuntimeError as exc:  # e.g. a revision whose `serve` wants something else
            said = [line.strip() for line in log.read_text(errors="replace").splitlines()]
            last = " | ".join(line for line in said[-4:] if line)  # where its error says why
            raise CompareError(f"the {label} build's server: {exc}: {last}") from exc
        event_id = create_event(base, token, one_section_event(label, STOCK, 1, venue="bench"))
        yield Build(label, imports, base, server.pid, event_id, _admit(base, event_id))


def _admit(base: str, event_id: str) -> list[str]:
    """`POLLED` purchases admitted over HTTP (either build's queue may store them its own
    way): their ids."""
    shots = one_ticket_buyers(f"/v1/events/{event_id}/purchases", 0, POLLED, "compare")
    try:
        return admitted_ids(base, shots, 32)
    except RuntimeError as exc:
        raise CompareError(f"the line's admissions: {exc}") from exc


def _imports(env: dict[str, str]) -> str:
    """Where a server started with `env` finds `eventpro`."""
    found = subprocess.run(
        [sys.executable, "-c", "import eventpro; print(eventpro.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip()


def _git(*args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=True)
    except FileNotFoundError as exc:
        raise CompareError("git is needed to take the other revision") from exc
    except subprocess.CalledProcessError as exc:
        reason = exc.stderr.decode(errors="replace").strip().splitlines()
        raise CompareError(f"git {args[0]}: {reason[-1] if reason else exc}") from exc
    return done.stdout


def _this_commit() -> str:
    """This checkout's commit, marked when `src/` has changes not committed."""
    commit = _git("rev-parse", "HEAD").decode().strip()
    changed = _git("status", "--porcelain", "--", "src").strip()
    return f"{commit} with uncommitted changes" if changed else commit


def _other_source(rev: str, workdir: Path) -> tuple[Path, str]:
    """`rev`'s `src/` written under `workdir`, and its commit."""
    commit = _git("rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}").decode().strip()
    archive = _git("archive", "--format=zip", commit, "src")
    target = workdir / "other"
    with zipfile.ZipFile(io.BytesIO(archive)) as tree:  # zipfile keeps every path inside
        tree.extractall(target)
    src = target / "src"
    if not (src / "eventpro" / "__init__.py").is_file():
        raise CompareError(f"{rev} has no src/eventpro")
    return src, commit
