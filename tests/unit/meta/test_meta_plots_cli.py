"""Forest/cumulative pictures and the ``pool`` command on a CSV (no database)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.cli.errors import CliError
from services.cli.meta import register
from services.meta_analysis import pool
from services.meta_analysis import studies as studies_module
from services.meta_analysis.breakdowns import cumulative, subgroups
from services.meta_analysis.plots import cumulative_plot, forest_plot
from services.meta_analysis.studies import Study

CSV = (
    "study,events,total,year,group\nAlpha,4,20,2001,x\nBeta,12,40,2003,x\nGamma,9,25,2005,y\n"
    "Delta,30,60,2010,y\nEpsilon,0,35,2012,x\n"
)


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_forest_and_cumulative_files(tmp_path: Path) -> None:
    studies = [
        Study(label=f"Study {i}", events=e, total=n, year=2000 + i, design=d)
        for i, (e, n, d) in enumerate(
            [(4, 20, "P"), (12, 40, "R"), (9, 25, "P"), (30, 60, "R"), (0, 35, "P")]
        )
    ]
    res = pool(
        [s.events for s in studies],
        [s.total for s in studies],  # type: ignore[misc]
        labels=[s.label for s in studies],
    )
    png = forest_plot(res, tmp_path / "f.png", excluded={"Bad 1999": "111 events > 14"})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    sg = subgroups(studies, "design")
    svg = forest_plot(sg.overall, tmp_path / "g.svg", subgroups=sg.groups, q_between="Q test")
    text = svg.read_text()
    assert "<svg" in text and "Study 3" in text and "Left out" not in text
    cum = cumulative_plot(cumulative(studies), tmp_path / "c.svg")
    assert "Study 4" in cum.read_text()
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        forest_plot(res, tmp_path / "f.pdf")


def test_pool_command_json(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(CSV)
    out = CliRunner().invoke(_app(), ["pool", str(path), "--json", "--by", "group"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    expected = pool([4, 12, 9, 30, 0], [20, 40, 25, 60, 35])
    assert data["result"]["estimate"] == pytest.approx(expected.estimate, rel=1e-12)
    assert data["result"]["k"] == 5 and data["excluded"] == {}
    assert [s["label"] for s in data["result"]["studies"]][:2] == ["Alpha", "Beta"]
    assert set(data["subgroups"]["groups"]) == {"x", "y"}
    glmm = CliRunner().invoke(_app(), ["pool", str(path), "--method", "glmm", "--json"])
    assert json.loads(glmm.output)["result"]["method"] == "GLMM"


def test_pool_command_human_output_and_impossible_row(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(CSV + "Zeta,111,14,1993,y\n")
    out = CliRunner().invoke(_app(), ["pool", str(path), "--method", "DL", "--test", "knha"])
    assert out.exit_code == 0, out.output
    assert "[error] events_exceed_total: Zeta" in out.output
    assert "DL logit (knha), k = 5" in out.output


@pytest.mark.parametrize(
    "body,fragment",
    [
        ("study,events,total\nA,4,20\nB,x,40\n", "study 'B', field 'events': 'x' is not a number"),
        ("study,events,total\nA,4,20\nB,,40\n", "study 'B', field 'events': missing"),
        ("study,events\nA,4\n", "bad.csv: missing required column 'total' (need study,"),
        ("study\nA\n", "bad.csv: missing required columns 'events', 'total'"),
        ("study,events,total\n", "bad.csv: no studies: the file has a header but no rows"),
        ("study,events,total\nA,4,20\n", "bad.csv: cannot pool: only one study (need at least 2)"),
        (
            "study,events,total\nA,4,20\nB,111,14\n",
            "bad.csv: cannot pool: only one study (need at least 2) (left out by the audit: B:",
        ),
    ],
)
def test_pool_command_bad_csv(tmp_path: Path, body: str, fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    out = CliRunner().invoke(_app(), ["pool", str(path)])
    assert isinstance(out.exception, CliError) and out.exception.exit_code == 1
    assert fragment in str(out.exception)
    assert "study 'bad.csv'" not in str(out.exception)


@pytest.mark.parametrize(
    "body,fragment",
    [
        ("study,events,total\n", "error: empty.csv: no studies: the file has a header but no rows"),
        ("study,events\nA,4\n", "error: empty.csv: missing required column 'total'"),
        ("study,events,total\nA,4,20\n", "error: empty.csv: cannot pool: only one study"),
        ("study,events,total\nA,0,12\nB,12,12\n", "error: empty.csv: cannot pool with the GLMM"),
        (b"study,events,total\nA\xe9,4,20\nB,5,9\n", "error: empty.csv: not UTF-8 text"),
    ],
)
def test_pool_exits_1_with_one_error_line(tmp_path: Path, body: str | bytes, fragment: str) -> None:
    """The real console entry point (a subprocess): one ``error:`` line, exit 1, no traceback."""
    path = tmp_path / "empty.csv"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "pool", str(path), "--method", "GLMM"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(fragment), done.stderr


def test_pool_refuses_a_file_past_the_size_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.csv"
    path.write_text(CSV)
    monkeypatch.setattr(studies_module, "MAX_CSV_BYTES", 100)
    out = CliRunner().invoke(_app(), ["pool", str(path)])
    assert isinstance(out.exception, CliError)
    assert "big.csv: 0 MB is over the 0 MB limit for pooling a CSV" in str(out.exception)
    monkeypatch.setattr(studies_module, "MAX_CSV_BYTES", 10**6)
    monkeypatch.setattr(studies_module, "MAX_STUDIES", 3)
    out = CliRunner().invoke(_app(), ["pool", str(path)])
    assert "big.csv: more than 3 studies; split the file" in str(out.exception)


def test_pool_command_unknown_method(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(CSV)
    out = CliRunner().invoke(_app(), ["pool", str(path), "--method", "SJ"])
    assert isinstance(out.exception, CliError) and "unknown method 'SJ'" in str(out.exception)
