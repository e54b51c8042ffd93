"""The hub's pages and their files, served from the package's `hub/web/` folder."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from importlib.resources import files
from pathlib import PurePosixPath
from typing import Final

from fastapi import HTTPException
from fastapi.responses import Response

MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".wav": "audio/wav",
    ".webmanifest": "application/manifest+json",
}


def web_file(name: str, headers: Mapping[str, str] | None = None) -> Response:
    """One file of `hub/web/`, with the media type its suffix names."""
    data = files("hub").joinpath("web", name).read_bytes()
    return Response(data, media_type=MEDIA_TYPES[PurePosixPath(name).suffix], headers=headers)


def listed_file(
    name: str, listed: Collection[str], headers: Mapping[str, str] | None = None
) -> Response:
    """A file a page asks for by name: only those `listed` are served, anything else is 404."""
    if name not in listed:
        raise HTTPException(404, "not found")
    return web_file(name, headers)
