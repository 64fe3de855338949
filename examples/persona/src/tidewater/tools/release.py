"""Tag and publish one library from this repository.

Usage: python tools/release.py shardcat 0.4.1

It refuses to run on a dirty tree, on a branch other than the release branch,
or when the version is already tagged. It never releases two libraries at
once: if you want that, run it twice and read the output in between.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("shardcat", "sievekit", "tickmark", "cadenza")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in LIBRARIES:
        print(__doc__)
        return 2
    library, version = argv
    settings = tomllib.loads((ROOT / "tools" / "release.toml").read_text())["release"]
    if git("status", "--porcelain"):
        print("refusing: the working tree is dirty")
        return 1
    if git("rev-parse", "--abbrev-ref", "HEAD") != settings["branch"]:
        print(f"refusing: not on {settings['branch']}")
        return 1
    tag = settings["tag_format"].format(library=library, version=version)
    if tag in git("tag", "--list", tag).split():
        print(f"refusing: {tag} exists")
        return 1
    subprocess.run([sys.executable, "-m", "build", library], cwd=ROOT, check=True)
    git("tag", "-a", tag, "-m", f"{library} {version}")
    print(f"tagged {tag}; push the tag, then upload {library}/dist/*")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
