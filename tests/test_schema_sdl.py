"""The printed schema is committed (schema.graphql) and keeps the API contract."""

import subprocess
import sys
from pathlib import Path

import pytest

from schema import build_schema

ROOT = Path(__file__).resolve().parent.parent
CHECKER = ROOT.parent / "shared" / "tools" / "check-contract"


def test_committed_schema_graphql_is_current() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == build_schema().as_str() + "\n", (
        "schema.graphql is stale: run `gateway schema > schema.graphql`"
    )


@pytest.mark.skipif(
    not CHECKER.exists(), reason="the shared contract checker is not beside this clone"
)
def test_everything_the_schema_has_matches_the_contract() -> None:
    """Parts of the contract still to come are reported missing; nothing may differ."""
    result = subprocess.run(
        [sys.executable, str(CHECKER), str(ROOT / "schema.graphql")],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.strip().splitlines() + result.stderr.strip().splitlines()
    differences = [line for line in lines[:-1] if "missing" not in line]
    assert differences == [], "\n".join(differences)
    assert lines[-1].startswith("contract:")
