"""An alert as the staff read it: where it happened in words, and who answered it by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from hub.registry.data import RegistryData
from hub.registry.labels import alert_place

# hub/alerts/lifecycle.py records what the hub does by itself as done by "system".
SYSTEM_ACTOR: Final = "system"


def placed(
    alert: dict[str, Any], data: RegistryData, name_of: Callable[[str], str]
) -> dict[str, Any]:
    """The alert with where it happened in words (`place`, hub/registry/labels.py), and who
    answered it by name (`acknowledged_by_name`, `resolved_by_name`)."""
    names = {
        f"{field}_name": "the hub" if alert[field] == SYSTEM_ACTOR else name_of(alert[field])
        for field in ("acknowledged_by", "resolved_by")
        if alert.get(field)
    }
    return {**alert, **names, "place": alert_place(data, alert)}
