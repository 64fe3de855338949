"""A LinkedIn "Get a copy of your data" zip from the CSV files in ``src/linkedin/``."""

from __future__ import annotations

from pathlib import Path

from .common import SRC, utc, write_bytes, zip_bytes

EXPORTED = utc("2024-06-02 08:30:00")
# LinkedIn writes some files with a UTF-8 byte-order mark; readers must cope with both.
WITH_BOM = {"Shares.csv", "Connections.csv"}
ORDER = ["Connections.csv", "Education.csv", "Positions.csv", "Profile.csv", "Shares.csv", "Skills.csv"]


def linkedin_zip_bytes(folder: Path = SRC / "linkedin") -> bytes:
    """The export zip: the CSVs at the top level, CRLF line ends as LinkedIn writes them."""
    members = []
    for name in ORDER:
        text = (folder / name).read_text(encoding="utf-8").replace("\n", "\r\n")
        members.append((name, ("\ufeff" if name in WITH_BOM else "").encode() + text.encode("utf-8")))
    return zip_bytes(members, EXPORTED)


def write_linkedin(out: Path) -> list[Path]:
    """Write ``linkedin/linkedin-export.zip`` under ``out``."""
    return [write_bytes(out / "linkedin" / "linkedin-export.zip", linkedin_zip_bytes())]
