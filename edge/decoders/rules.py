"""Apply a profile's field rules: a device's raw value becomes a canonical observation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from contract.wire import BOOL_READINGS, NUMERIC_READINGS, Observation, Value
from device_profiles.schema import FieldRule
from edge.decoders.base import DecodeError

Raw = bool | int | float | str


def value_key(raw: Raw) -> str:
    """The key a raw value is looked up by in a rule's `values`: 1/0 for booleans."""
    if isinstance(raw, bool):
        return "1" if raw else "0"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


def apply_rule(rule: FieldRule, raw: Raw, device: str, at: float) -> Observation | None:
    """The observation `rule` makes of `raw`; None when the rule maps the value to nothing."""
    value = _translate(rule, raw)
    if value is None:
        return None
    if rule.reading is not None:
        _check_reading(rule.reading, value, rule.source)
        return Observation(device, at, "reading", rule.reading, value)
    return Observation(device, at, "event", str(rule.event), value)


def apply_rules(
    rules: Iterable[FieldRule], raw: Mapping[str, Raw], device: str, at: float
) -> list[Observation]:
    """The observations of every rule whose `source` is among the named raw values."""
    observations = (
        apply_rule(rule, raw[rule.source], device, at) for rule in rules if rule.source in raw
    )
    return [obs for obs in observations if obs is not None]


def _translate(rule: FieldRule, raw: Raw) -> Value:
    if value_key(raw) in rule.ignore:
        return None
    if rule.values is not None:
        key = value_key(raw)
        if key not in rule.values:
            known = ", ".join(sorted(rule.values))
            raise DecodeError("bad_value", f"{rule.source}: raw value {key!r} not in ({known})")
        return rule.values[key]
    if isinstance(raw, int | float) and not isinstance(raw, bool) and rule.scale != 1.0:
        return raw * rule.scale
    return raw


def _check_reading(reading: str, value: Value, source: str) -> None:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if reading in BOOL_READINGS and not isinstance(value, bool):
        raise DecodeError("bad_value", f"{source}: {reading} needs a boolean, got {value!r}")
    if reading in NUMERIC_READINGS and not numeric:
        raise DecodeError("bad_value", f"{source}: {reading} needs a number, got {value!r}")
