"""Load device profiles: the YAML files packaged next to this module."""

from __future__ import annotations

import functools
from importlib import resources
from importlib.resources.abc import Traversable

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from device_profiles.schema import DeviceProfile

SUFFIX = ".yaml"


class ProfileError(ValueError):
    """A profile that is unknown, unreadable or invalid. The message says which and why."""


def _profile_dir() -> Traversable:
    return resources.files("device_profiles")


def available_profiles() -> list[str]:
    """The models that have a profile, sorted."""
    names = (entry.name for entry in _profile_dir().iterdir() if entry.is_file())
    return sorted(name.removesuffix(SUFFIX) for name in names if name.endswith(SUFFIX))


@functools.cache
def load_profile(model: str) -> DeviceProfile:
    """The validated profile of `model`, read once and then cached."""
    known = available_profiles()
    if model not in known:
        raise ProfileError(f"unknown device model {model!r}; available: {', '.join(known)}")
    filename = f"{model}{SUFFIX}"
    profile = _validate(filename, _read_yaml(filename))
    if profile.model != model:
        raise ProfileError(f"{filename}: field 'model' is {profile.model!r}, expected {model!r}")
    return profile


def _read_yaml(filename: str) -> object:
    try:
        return yaml.safe_load(_profile_dir().joinpath(filename).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"{filename}: invalid YAML: {exc}") from exc


def _validate(filename: str, document: object) -> DeviceProfile:
    try:
        return DeviceProfile.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise ProfileError(f"{filename}: {problems}") from exc


def _describe(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    return f"field {where}: {error['msg']}"
