"""scripts/screenshots: a real hub, Mosquitto and Chromium for each picture, written where told.

The pictures in docs/screenshots are made by this script, never by a test run; here it writes
into a temporary folder, and docs/screenshots must be left as it was.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from PIL import Image

from tests.support.paths import REPO

DOCS = REPO / "docs" / "screenshots"
# (width, height) in pixels; None where the picture is of the whole page, as tall as it is.
SIZES: dict[str, tuple[int, int | None]] = {
    "console": (1180, 820),  # the tablet's screen
    "resident": (1180, None),
    "family": (780, 1688),  # a 390×844 phone at device scale 2
    "supervisor": (1280, None),
    "installer": (390, None),  # a phone
}
MIN_HEIGHT = {"resident": 820, "supervisor": 1500, "installer": 844}  # at least the viewport


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.png")}


def test_the_script_writes_the_five_pictures_into_the_folder_it_is_given(tmp_path: Path) -> None:
    before = digests(DOCS)
    out = tmp_path / "shots"
    done = subprocess.run(
        [str(REPO / "scripts" / "screenshots"), "--out", "shots"],
        cwd=tmp_path,  # the script finds the checkout by itself; --out is from here
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.png" for name in SIZES)
    for name, (width, height) in SIZES.items():
        path = out / f"{name}.png"
        with Image.open(path) as image:
            image.verify()  # a whole, valid PNG
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width == width, name
            if height is not None:
                assert image.height == height, name
            else:
                assert image.height >= MIN_HEIGHT[name], name
            # A page with something on it, not a blank or one-colour screen.
            colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
            assert len(colours) > 100, f"{name}.png has {len(colours)} colours"
        assert f"wrote shots/{name}.png ({width}×" in done.stdout, done.stdout

    assert digests(DOCS) == before  # docs/screenshots untouched
