"""Escalation policies: who is told about an alert, after how long, by day and by night.

```yaml
escalation:
  defaults:                     # every site, day and night, unless overridden
    steps:
      - {after_min: 0, notify: on_duty_zone}
      - {after_min: 3, notify: charge_nurse}
      - {after_min: 10, notify: family_contacts}
    repeat_every_min: 5         # repeat the last step until someone acknowledges
    realert_after_min: 30       # acknowledged but not resolved: remind, and again every 30 min
    night:                      # only at night (the watch's night window)
      steps:
        - {after_min: 0, notify: on_duty_zone}
        - {after_min: 2, notify: [charge_nurse, "user:duty-manager"]}
  sites:
    sunrise: {realert_after_min: 20}
  residents:
    E-0001: {night: {steps: [{after_min: 0, notify: [on_duty_zone, family_contacts]}]}}
```

Targets: `on_duty_zone` (staff on duty for the alert's zone), `charge_nurse`, `family_contacts`
(the resident's contacts, in order), `all_on_duty` (everyone on duty at the site) and
`user:NAME`. Smoke alerts also notify everyone on duty at the first step.

A step may name the channels it uses (`channels: [console, push]`, or `[apprise]` for the
contacts' fallback URLs); without `channels:` it uses every channel that reaches the person.
Push first, then Apprise for a family bed:

```yaml
  residents:
    E-0002:
      steps:
        - {after_min: 0, notify: [on_duty_zone, family_contacts], channels: [console, push]}
        - {after_min: 3, notify: family_contacts, channels: [apprise]}
        - {after_min: 6, notify: charge_nurse}
```

A family bed at home can make the family a responder: `family_responder: true` lets a relative
answer "I'm handling it", which stops the family's own reminders; `on_family_handling: pause`
also holds the staff steps (the default, `continue`, lets them go on).

The most specific level wins, field by field: resident over site over defaults, and at each
level the `day:`/`night:` block over the fields beside it.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.alerts.lifecycle import Priority

Period = Literal["day", "night"]
PERIODS: Final[tuple[Period, ...]] = ("day", "night")
TARGETS: Final = frozenset({"on_duty_zone", "charge_nurse", "family_contacts", "all_on_duty"})
CHANNELS: Final = frozenset({"console", "push", "apprise"})
USER_TARGET: Final = "user:"


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    after_min: float = Field(ge=0)
    notify: tuple[str, ...] = Field(min_length=1)
    # None: every channel that reaches the person.
    channels: tuple[str, ...] | None = None

    @field_validator("notify", "channels", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, channels: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if channels is None:
            return None
        known = ", ".join(sorted(CHANNELS))
        if not channels:
            raise ValueError(f"list at least one channel ({known}), or leave channels out")
        for channel in channels:
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r}; use one of {known}")
        return tuple(dict.fromkeys(channels))

    @field_validator("notify")
    @classmethod
    def _known_targets(cls, targets: tuple[str, ...]) -> tuple[str, ...]:
        for target in targets:
            if target not in TARGETS and not (
                target.startswith(USER_TARGET) and len(target) > len(USER_TARGET)
            ):
                known = ", ".join(sorted(TARGETS))
                raise ValueError(f"unknown target {target!r}; use one of {known} or user:NAME")
        return targets

    def users(self) -> list[str]:
        return [t.removeprefix(USER_TARGET) for t in self.notify if t.startswith(USER_TARGET)]


class Policy(BaseModel):
    """One resolved policy: the steps, the repeat and the re-alert."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: tuple[Step, ...] = (
        Step(after_min=0, notify=("on_duty_zone",)),
        Step(after_min=3, notify=("charge_nurse",)),
        Step(after_min=10, notify=("family_contacts",)),
    )
    repeat_every_min: float | None = Field(default=5, gt=0)
    realert_after_min: float | None = Field(default=30, gt=0)
    # Alerts of other priorities (trouble, by default) are told to the first step only, once.
    escalate: tuple[Priority, ...] = ("emergency", "routine")
    # The family may answer "I'm handling it" (a family bed at home): their own reminders stop.
    family_responder: bool = False
    # While the family handles it: staff steps go on ("continue") or wait for staff ("pause").
    on_family_handling: Literal["continue", "pause"] = "continue"

    @model_validator(mode="after")
    def _in_order(self) -> Policy:
        if not self.steps:
            raise ValueError("a policy needs at least one step")
        delays = [step.after_min for step in self.steps]
        if delays != sorted(delays):
            raise ValueError("steps must be listed in order of after_min")
        return self

    def step_due(self, opened_at: float, n: int) -> float | None:
        """When firing `n` is due: steps in turn, then the last one repeated; None if never."""
        last = len(self.steps) - 1
        if n <= last:
            return opened_at + self.steps[n].after_min * 60
        if self.repeat_every_min is None:
            return None
        return opened_at + (self.steps[last].after_min + (n - last) * self.repeat_every_min) * 60

    def realert_due(self, acknowledged_at: float, n: int) -> float | None:
        if self.realert_after_min is None:
            return None
        return acknowledged_at + (n + 1) * self.realert_after_min * 60

    def step(self, n: int) -> int:
        """The index of the step that firing `n` notifies."""
        return min(n, len(self.steps) - 1)


class EscalationConfig(BaseModel):
    """The `escalation:` section: partial policies at each level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: dict[str, Any] = Field(default_factory=dict)
    sites: dict[str, dict[str, Any]] = Field(default_factory=dict)
    residents: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def model_post_init(self, _: Any) -> None:
        for level, name, partial in self._levels():
            for period in PERIODS:
                try:
                    Policy.model_validate(_merge(period, self.defaults, partial))
                except ValueError as exc:
                    raise ValueError(f"escalation.{level}{name} ({period}): {exc}") from exc

    def _levels(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            ("defaults", "", {}),
            *(("sites.", name, partial) for name, partial in self.sites.items()),
            *(("residents.", name, partial) for name, partial in self.residents.items()),
        ]

    def unknown_users(self, users: set[str]) -> list[str]:
        """Where a policy names someone (`user:NAME`) who is not a hub user."""
        return [
            f"escalation.{level}{name} ({period}): no user {user!r}"
            for level, name, partial in self._levels()
            for period in PERIODS
            for step in Policy.model_validate(_merge(period, self.defaults, partial)).steps
            for user in step.users()
            if user not in users
        ]


class EscalationPolicies:
    """Resolves the policy for a site, a resident and the time of day, with a cache."""

    def __init__(self, config: EscalationConfig) -> None:
        self._config = config
        self._cache: dict[tuple[str, str | None, Period], Policy] = {}

    def policy(self, site: str, resident: str | None, period: Period) -> Policy:
        key = (site, resident, period)
        if key not in self._cache:
            config = self._config
            levels = [config.defaults, config.sites.get(site, {})]
            if resident is not None:
                levels.append(config.residents.get(resident, {}))
            self._cache[key] = Policy.model_validate(_merge(period, *levels))
        return self._cache[key]


def _merge(period: Period, *levels: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for level in levels:
        block = level.get(period, {})
        if not isinstance(block, dict):
            raise ValueError(f"{period}: must be a mapping of policy fields")
        merged |= {k: v for k, v in level.items() if k not in PERIODS}
        merged |= block
    return merged
