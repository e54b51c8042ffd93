"""How the live streams (server-sent events) keep going: a comment line when quiet, and how
often they check their caller is still signed in."""

from __future__ import annotations

from typing import Final

KEEPALIVE_S: Final = 15.0
# A live stream checks its caller's session this often, between alerts: an alert is sent
# without a query first (a sign-out on this hub stops the stream at once; an expiry, a disabled
# user or a revoked token within this time).
RECHECK_S: Final = 5.0
