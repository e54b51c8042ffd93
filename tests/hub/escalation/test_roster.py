"""The roster and escalation policies as configured: who is on duty when, and which policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from hub.config import HubConfig
from hub.escalation.policy import EscalationConfig, EscalationPolicies
from hub.escalation.roster import Roster, RosterConfig
from hub.watch.settings import WatchConfig, WatchPolicy

LONDON = ZoneInfo("Europe/London")
ROSTER: dict[str, Any] = {
    "sites": {
        "sunrise": {
            "shifts": [
                {
                    "name": "day",
                    "start": "07:00",
                    "end": "19:00",
                    "charge_nurse": "sister",
                    "assignments": [{"user": "ann", "zones": ["east"]}, {"user": "bob"}],
                },
                {
                    "name": "weekend-night",
                    "start": "19:00",
                    "end": "07:00",
                    "days": ["fri", "sat"],
                    "charge_nurse": "nights",
                    "assignments": [{"user": "cat", "zones": ["west"]}],
                },
            ]
        }
    }
}


def roster() -> Roster:
    policy = WatchPolicy(WatchConfig(sites={"sunrise": {"timezone": "Europe/London"}}))
    return Roster(RosterConfig.model_validate(ROSTER), policy)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON).timestamp()


def test_shift_boundaries_are_in_the_sites_local_time() -> None:
    # 2026-07-03 is a Friday; London is on summer time (UTC+1).
    duty = roster()
    assert duty.shift_name("sunrise", at(2026, 7, 3, 6, 59)) is None  # Thursday night: no shift
    assert duty.shift_name("sunrise", at(2026, 7, 3, 7, 0)) == "day"
    assert duty.shift_name("sunrise", at(2026, 7, 3, 19, 0)) == "weekend-night"
    # Friday's night shift runs into Saturday morning and belongs to Friday.
    assert duty.shift_name("sunrise", at(2026, 7, 4, 6, 59)) == "weekend-night"
    # Sunday night is not listed, so Monday 03:00 has nobody.
    assert duty.everyone_on_duty("sunrise", at(2026, 7, 6, 3, 0)) == []


def test_who_covers_a_zone_and_who_is_in_charge() -> None:
    duty = roster()
    noon = at(2026, 7, 3, 12, 0)
    assert duty.on_duty("sunrise", noon, "east") == ["ann", "bob"]
    assert duty.on_duty("sunrise", noon, "west") == ["bob"]
    assert duty.on_duty("sunrise", noon, None) == ["ann", "bob"]
    assert duty.charge_nurses("sunrise", noon) == ["sister"]
    assert duty.everyone_on_duty("sunrise", noon) == ["ann", "bob", "sister"]
    assert duty.on_duty("elsewhere", noon) == []


def test_the_shifts_running_the_next_one_and_the_next_change() -> None:
    duty = roster()
    thursday_night = at(2026, 7, 2, 20, 0)  # no weekend night on a Thursday
    assert duty.running("sunrise", thursday_night) == []
    assert duty.next_change("sunrise", thursday_night) == at(2026, 7, 3, 7, 0)
    (day,) = duty.next_runs("sunrise", thursday_night)
    assert (day.shift.name, day.start_at, day.end_at) == (
        "day",
        at(2026, 7, 3, 7, 0),
        at(2026, 7, 3, 19, 0),
    )
    friday_noon = at(2026, 7, 3, 12, 0)
    assert [run.shift.name for run in duty.running("sunrise", friday_noon)] == ["day"]
    assert duty.next_change("sunrise", friday_noon) == at(2026, 7, 3, 19, 0)
    assert [run.shift.name for run in duty.next_runs("sunrise", friday_noon)] == ["weekend-night"]
    # Saturday 03:00 is in Friday's night shift, which ends at 07:00, when the day shift starts.
    (night,) = duty.running("sunrise", at(2026, 7, 4, 3, 0))
    assert (night.start_at, night.end_at) == (at(2026, 7, 3, 19, 0), at(2026, 7, 4, 7, 0))
    assert duty.next_change("sunrise", at(2026, 7, 4, 3, 0)) == at(2026, 7, 4, 7, 0)
    # The night the clocks go back is an hour longer.
    (long_night,) = duty.running("sunrise", at(2026, 10, 24, 23, 0))
    assert long_night.end_at - long_night.start_at == 13 * 3600
    assert duty.next_change("elsewhere", friday_noon) is None


def test_charge_nurses_unstaffed_zones_and_the_push_limit_are_read_from_the_roster() -> None:
    duty = roster()
    assert duty.is_charge_nurse("sunrise", "nights") and duty.is_charge_nurse("sunrise", "sister")
    assert not duty.is_charge_nurse("sunrise", "ann") and not duty.is_charge_nurse("x", "sister")
    assert duty.config.push_confirm_within_h == 24
    site = {"shifts": [], "unstaffed_zones": ["homes"]}
    custom = RosterConfig.model_validate({"sites": {"s": site}, "push_confirm_within_h": 6})
    assert (custom.push_confirm_within_h, custom.sites["s"].unstaffed_zones) == (6, ("homes",))
    with pytest.raises(ValidationError, match="greater than 0"):
        RosterConfig.model_validate({"push_confirm_within_h": 0})


def test_policy_levels_merge_field_by_field_day_and_night() -> None:
    config = EscalationConfig.model_validate(
        {
            "defaults": {"realert_after_min": 30, "night": {"repeat_every_min": 2}},
            "sites": {"sunrise": {"realert_after_min": 20}},
            "residents": {"E-1": {"night": {"steps": [{"after_min": 0, "notify": "user:ann"}]}}},
        }
    )
    policies = EscalationPolicies(config)
    day = policies.policy("sunrise", "E-1", "day")
    night = policies.policy("sunrise", "E-1", "night")
    assert (day.realert_after_min, day.repeat_every_min, len(day.steps)) == (20, 5, 3)
    assert (night.realert_after_min, night.repeat_every_min) == (20, 2)
    assert night.steps[0].notify == ("user:ann",)
    # Firing n: the steps in turn, then the last step again every repeat_every_min.
    assert [day.step_due(0, n) for n in range(5)] == [0, 180, 600, 900, 1200]
    assert config.unknown_users({"ann"}) == []


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"defaults": {"steps": [{"after_min": 0, "notify": "everyone"}]}}, "unknown target"),
        (
            {
                "sites": {
                    "s": {
                        "day": {
                            "steps": [
                                {"after_min": 5, "notify": "charge_nurse"},
                                {"after_min": 1, "notify": "charge_nurse"},
                            ]
                        }
                    }
                }
            },
            "in order of after_min",
        ),
        ({"defaults": {"night": 3}}, "must be a mapping"),
    ],
)
def test_a_wrong_policy_is_refused_with_its_place(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EscalationConfig.model_validate(section)


def test_the_roster_and_policies_may_only_name_hub_users() -> None:
    steps = [{"after_min": 0, "notify": "user:ghost"}]
    with pytest.raises(ValidationError) as raised:
        HubConfig.model_validate(
            {
                "web": {"secret_key": "s" * 40},
                "roster": ROSTER,
                "escalation": {"defaults": {"steps": steps}},
            }
        )
    text = str(raised.value)
    assert "roster.sites.sunrise shift 'day': no user 'ann'" in text
    assert "escalation.defaults (day): no user 'ghost'" in text
