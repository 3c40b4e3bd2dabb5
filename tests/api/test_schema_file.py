from pathlib import Path

from api.graphql.schema import sdl

ROOT = Path(__file__).resolve().parents[2]


def test_schema_file_matches_the_code():
    exported = (ROOT / "schema.graphql").read_text()
    assert exported == sdl(), "schema.graphql is stale: run `cdp export-schema`"


def test_public_contract_names_are_present():
    text = sdl()
    assert "node(\n" in text
    assert "interface Node" in text
    assert "workspace: Workspace!" in text
    assert "scalar DateTime" in text
