"""Headless Chromium for the tests of printed pages: a screenshot kept as an artifact and a PDF whose pages
must be A4.

The browser is the one installed on the machine (`.ci/run` installs Debian's ``chromium``); where none is
found the tests that need it skip, saying so. Each call runs the browser once with a profile of its own,
so concurrent test runs do not share state.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

NAMES = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome", "google-chrome-stable")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
"""Where screenshots are kept for a person to look at after the run (gitignored)."""
A4_POINTS = (595.28, 841.89)  # 210 x 297 mm at 72 points per inch
_MEDIA_BOX = re.compile(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]")


def find_chromium() -> str | None:
    """The path of the first Chromium-family browser on PATH, or None."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class Chromium:
    """One headless browser binary; ``work`` is a scratch directory for its profiles."""

    binary: str
    work: Path

    def _run(self, page: Path, *flags: str) -> None:
        profile = tempfile.mkdtemp(prefix="profile-", dir=self.work)
        argv = [self.binary, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                f"--user-data-dir={profile}", *flags, page.resolve().as_uri()]  # fmt: skip
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium refuses to start its sandbox as root (CI runs as root)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stderr[-2000:]}"

    def screenshot(self, page: Path, name: str, *, width: int = 1100, height: int = 1500) -> Path:
        """A PNG of ``page`` at ``width`` x ``height`` CSS pixels, kept as ``test-artifacts/<name>.png``."""
        ARTIFACTS.mkdir(exist_ok=True)
        png = ARTIFACTS / f"{name}.png"
        png.unlink(missing_ok=True)
        self._run(page, f"--screenshot={png}", f"--window-size={width},{height}")
        assert png.is_file(), f"Chromium wrote no screenshot of {page}"
        return png

    def pdf(self, page: Path) -> bytes:
        """``page`` printed to PDF as a person prints it (no header or footer added by the browser)."""
        out = self.work / f"{page.stem}.pdf"
        self._run(page, f"--print-to-pdf={out}", "--no-pdf-header-footer")
        return out.read_bytes()


def page_sizes(pdf: bytes) -> list[tuple[float, float]]:
    """Width and height in points of every page's MediaBox (Chromium writes them uncompressed)."""
    return [(float(x1) - float(x0), float(y1) - float(y0)) for x0, y0, x1, y1 in _MEDIA_BOX.findall(pdf)]


def is_a4(size: tuple[float, float]) -> bool:
    """A page of 595 x 842 points, give or take one (Chromium rounds to its device units)."""
    return all(abs(got - want) <= 1 for got, want in zip(size, A4_POINTS, strict=True))


def ink(png: Path) -> float:
    """The share of the screenshot's pixels that are not the page's background (its top-left pixel)."""
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        total = rgb.width * rgb.height
        background = rgb.getpixel((0, 0))
        counts = {colour: n for n, colour in rgb.getcolors(total) or []}
    return 1 - counts[background] / total
