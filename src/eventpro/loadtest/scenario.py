"""Load scenarios as data: a TOML file or a built-in preset, validated field by field.

A scenario says who arrives when (`arrival`), what they ask for (`mix`), how they behave
when answered badly (`retry`: the incident's retry storm is `immediate`) and how they
learn their decision after a `202` (`wait`). Bad values name the field:
`storm.toml: arrival.duration_s: Input should be greater than 0`.
"""

from __future__ import annotations

import random
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Arrival(Strict):
    """When buyers press "buy": `burst` all at once, `ramp` evenly over `duration_s`,
    `waves`: `waves` bursts spread over `duration_s`."""

    shape: Literal["burst", "ramp", "waves"] = "ramp"
    duration_s: float = Field(30.0, gt=0, le=3600)
    waves: int = Field(3, ge=1, le=100)


class Mix(Strict):
    """What buyers ask for: `quantity` tickets of `section`, or, for `seats_share` of
    them, `quantity` seats of the reserved `seat_section`."""

    section: str = Field("Floor", min_length=1, max_length=64)
    quantity: int = Field(1, ge=1, le=10)
    seats_share: float = Field(0.0, ge=0, le=1)
    seat_section: str = Field("A", min_length=1, max_length=64)


class Retry(Strict):
    """After a 5xx, a timeout, a refused connection or a 429/503: give up (`none`), try
    again at once (`immediate`: the retry storm of the incident), or wait an exponential
    delay with full jitter, at least `Retry-After` when the server gave one (`backoff`)."""

    policy: Literal["none", "immediate", "backoff"] = "backoff"
    max_attempts: int = Field(5, ge=1, le=50)
    base_delay_s: float = Field(0.2, gt=0, le=60)
    max_delay_s: float = Field(5.0, gt=0, le=600)


class Scenario(Strict):
    name: str = Field("custom", max_length=64)
    buyers: int = Field(1000, ge=1, le=2_000_000)
    requests_per_buyer: int = Field(1, ge=1, le=10)
    duplicate_share: float = Field(
        0.0, ge=0, le=1, description="share of requests sent twice at once, same key"
    )
    arrival: Arrival = Arrival()
    mix: Mix = Mix()
    retry: Retry = Retry()
    wait: Literal["poll", "stream", "none"] = "poll"
    poll_interval_s: float = Field(1.0, gt=0, le=60)
    timeout_s: float = Field(10.0, gt=0, le=600)
    connections: int = Field(256, ge=1, le=20_000)
    processes: int = Field(1, ge=1, le=32)
    seed: int = 7

    def arrivals(self) -> list[float]:
        """Each buyer's arrival, in seconds after the start, in buyer order."""
        return arrival_times(self.buyers, self.arrival, self.seed)

    def with_overrides(self, **values: object) -> Scenario:
        """A copy with the given fields replaced (None leaves a field), validated again."""
        data = self.model_dump()
        for dotted, value in values.items():
            if value is None:
                continue
            *parents, leaf = dotted.split(".")
            target = data
            for parent in parents:
                target = target[parent]
            target[leaf] = value
        return Scenario.model_validate(data)


def arrival_times(buyers: int, arrival: Arrival, seed: int = 7) -> list[float]:
    """Arrival offsets: 0 for a burst, evenly spaced for a ramp, bursts for waves.

    Within a ramp each buyer gets a little jitter (seeded), so arrivals are not a comb.
    """
    if arrival.shape == "burst":
        return [0.0] * buyers
    if arrival.shape == "ramp":
        step = arrival.duration_s / buyers
        rng = random.Random(seed)
        return [min(arrival.duration_s, (i + rng.random()) * step) for i in range(buyers)]
    gap = arrival.duration_s / arrival.waves
    return [(i * arrival.waves // buyers) * gap for i in range(buyers)]


PRESETS: dict[str, Scenario] = {
    "smoke": Scenario(
        name="smoke", buyers=300, arrival=Arrival(shape="ramp", duration_s=2), connections=64
    ),
    "incident": Scenario(
        name="incident",
        buyers=50_000,
        arrival=Arrival(shape="ramp", duration_s=30),
        retry=Retry(policy="immediate", max_attempts=5),
        wait="poll",
        timeout_s=10,
        connections=1024,
    ),
    "waves": Scenario(
        name="waves",
        buyers=20_000,
        arrival=Arrival(shape="waves", duration_s=20, waves=4),
        duplicate_share=0.05,
        retry=Retry(policy="backoff"),
        wait="stream",
        connections=512,
    ),
}


class ScenarioError(ValueError):
    """A scenario file or preset that cannot be used; the message names the field."""


def load_scenario(path: Path | None = None, preset: str | None = None) -> Scenario:
    """A scenario from a TOML file, else a preset (default `smoke`)."""
    if path is None:
        name = preset or "smoke"
        if name not in PRESETS:
            raise ScenarioError(f"no preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
        return PRESETS[name]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(describe(exc, str(path))) from exc


def describe(error: ValidationError, source: str) -> str:
    """pydantic's errors as `source: field.path: message`, one per line."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(f"{source}: {where}: {message}")
    return "\n".join(lines)
