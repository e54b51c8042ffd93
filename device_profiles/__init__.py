"""Device profiles: one YAML file per supported device model, with its loader and schema."""

from device_profiles.loader import ProfileError, available_profiles, load_profile
from device_profiles.schema import DeviceProfile, FieldRule, SerialSettings

__all__ = [
    "DeviceProfile",
    "FieldRule",
    "ProfileError",
    "SerialSettings",
    "available_profiles",
    "load_profile",
]
