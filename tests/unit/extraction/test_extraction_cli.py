"""``living-review extract --text``: output, --json keys, and refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.cli import extraction as cli_extraction
from services.cli.errors import CliError

PASSAGE = (
    "Spontaneous regression of lumbar disc herniation: a prospective MRI study\n"
    "METHODS: Fifty-eight patients (30 men and 28 women; aged 22-70 years) were enrolled.\n"
    "RESULTS: Of the 58 patients, 41 (70.7%) showed regression on MRI at 12 months.\n"
)


@pytest.fixture
def app() -> typer.Typer:
    application = typer.Typer()
    cli_extraction.register(application)

    @application.callback()
    def _root() -> None:
        """Keep extract a sub-command."""

    return application


def test_text_json_has_documented_keys(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text(PASSAGE, encoding="utf-8")
    result = CliRunner().invoke(app, ["extract", "--text", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"source", "title", "review", "stored", "extractor_version", "fields"}
    assert data["title"].startswith("Spontaneous regression")
    n = data["fields"]["n_resorbed"]
    assert set(n) == {
        "value",
        "unit",
        "start",
        "end",
        "evidence",
        "confidence",
        "method",
        "source",
        "note",
        "reason",
    }
    assert (n["value"], data["fields"]["n_total"]["value"]) == (41, 58)
    abstract = " ".join(PASSAGE.splitlines()[1:])
    assert abstract[n["start"] : n["end"]].startswith("41")
    assert data["fields"]["design"]["value"] == "Prospective"  # the protocol's label


def test_text_plain_output(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text(PASSAGE, encoding="utf-8")
    result = CliRunner().invoke(app, ["extract", "--text", str(path)])
    assert result.exit_code == 0
    assert "n_total" in result.stdout and "58" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --text FILE or --pmid N"),
        (["--text", "missing.txt"], "no such file"),
        (["--text", "{empty}"], "title on the first line"),
        (["--text", "{empty}", "--store"], "--store needs --pmid"),
    ],
)
def test_bad_input_is_one_clear_error(
    app: typer.Typer, tmp_path: Path, args: list[str], message: str
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("only a title\n", encoding="utf-8")
    args = [
        a.replace("{empty}", str(empty)).replace("missing.txt", str(tmp_path / "m.txt"))
        for a in args
    ]
    result = CliRunner().invoke(app, ["extract", *args])
    assert result.exit_code != 0
    assert isinstance(result.exception, CliError)
    assert message in str(result.exception)
