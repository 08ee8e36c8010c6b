"""Scenarios: presets, arrival shapes, and bad files that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventpro.loadtest.scenario import (
    PRESETS,
    Arrival,
    ScenarioError,
    arrival_times,
    load_scenario,
)


def test_every_preset_loads_and_the_default_is_smoke() -> None:
    assert load_scenario().name == "smoke"
    for name in PRESETS:
        assert load_scenario(preset=name).name == name
    incident = load_scenario(preset="incident")
    assert incident.buyers == 50_000 and incident.retry.policy == "immediate"
    with pytest.raises(ScenarioError, match="no preset 'storm'; presets: incident, smoke"):
        load_scenario(preset="storm")


def test_arrival_shapes() -> None:
    assert arrival_times(4, Arrival(shape="burst")) == [0.0] * 4
    ramp = arrival_times(1000, Arrival(shape="ramp", duration_s=10))
    assert ramp == sorted(ramp) and 0 <= ramp[0] < 0.01 and 9.98 < ramp[-1] <= 10
    waves = arrival_times(9, Arrival(shape="waves", duration_s=30, waves=3))
    assert waves == [0.0] * 3 + [10.0] * 3 + [20.0] * 3


def test_a_file_with_overrides_keeps_its_other_values(tmp_path: Path) -> None:
    path = tmp_path / "storm.toml"
    path.write_text('name = "storm"\nbuyers = 500\n[retry]\npolicy = "immediate"\n')
    scenario = load_scenario(path).with_overrides(**{"arrival.duration_s": 3.0, "buyers": None})
    assert (scenario.name, scenario.buyers, scenario.retry.policy) == ("storm", 500, "immediate")
    assert scenario.arrival.duration_s == 3.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("buyers = -5", "storm.toml: buyers: Input should be greater than or equal to 1"),
        (
            "[arrival]\nduration_s = 0",
            "storm.toml: arrival.duration_s: Input should be greater than 0",
        ),
        (
            '[retry]\npolicy = "forever"',
            "storm.toml: retry.policy: Input should be 'none', 'immediate' or 'backoff'",
        ),
        ("speed = 3", "storm.toml: speed: unknown field"),
        ('wait = "email"', "storm.toml: wait: Input should be 'poll', 'stream' or 'none'"),
        (
            "[mix]\nseats_share = 1.5",
            "storm.toml: mix.seats_share: Input should be less than or equal to 1",
        ),
        ("buyers = ", "storm.toml: not valid TOML"),
    ],
)
def test_a_bad_file_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "storm.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert message in str(caught.value).replace(str(tmp_path) + "/", "")
