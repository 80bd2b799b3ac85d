#!/usr/bin/env python3
"""Everything a fresh clone needs, with nothing but Python 3.11+ installed:

    python3 dev.py serve    # embedded Postgres, migrated, demo data, GraphiQL on :8000
    python3 dev.py test     # the whole test suite against a real (embedded) Postgres
    python3 dev.py lint     # ruff and mypy, as CI runs them

Creates .venv on first use and re-installs when pyproject.toml or requirements.lock
change, always constrained by requirements.lock so everyone gets what CI tested.
Any other arguments go to the `gateway` command (e.g. `python3 dev.py seed --users 10`).
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"
LOCK = ROOT / "requirements.lock"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "requirements.lock"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py is what runs on older Pythons
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print("creating .venv ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("installing dependencies from requirements.lock ...", file=sys.stderr)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-c", str(LOCK), "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(_fingerprint())


def run(*command: str) -> int:
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "test":
        return run(str(BIN / "pytest"), *rest)
    if command == "lint":
        return (
            run(str(BIN / "ruff"), "check", ".")
            or run(str(BIN / "ruff"), "format", "--check", ".")
            or run(str(BIN / "mypy"))  # the files pyproject.toml lists
        )
    return run(str(BIN / "gateway"), command, *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
