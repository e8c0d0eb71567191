"""Bad imports: one clear line, a non-zero exit, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.intake.second_review import Material
from tests.integration.intake.test_second_review import SLUG, cli, counts, new_review

pytestmark = pytest.mark.integration


@pytest.fixture
def ready(env: dict[str, str], material: Material) -> dict[str, str]:
    assert new_review(env, material).returncode == 0
    return env


def one_line_error(result: object) -> str:
    err = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 1, err  # type: ignore[attr-defined]
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return str(err)


def test_bad_imports_write_nothing(
    ready: dict[str, str], material: Material, tmp_path: Path, db_url: str
) -> None:
    env, snap = ready, str(material.snapshot)
    before = counts(db_url)

    unknown = tmp_path / "export.json"
    unknown.write_text('{"records": []}\n')
    err = one_line_error(cli("import", "decisions", str(unknown), "-r", SLUG, env=env))
    assert "not a decisions export we read" in err

    no_ids = tmp_path / "decisions.csv"
    no_ids.write_text("reviewer,decision\nines,exclude\n")
    err = one_line_error(cli("import", "decisions", str(no_ids), "-r", SLUG, env=env))
    assert "no column identifies the records (need PMID, DOI or title" in err

    unmatched = tmp_path / "plain.csv"
    unmatched.write_text(f"pmid,decision,reason\n{material.baseline_pmids[3]},exclude,wrong outcome\n"
                         "12345678,exclude,wrong outcome\n")
    err = one_line_error(cli("import", "decisions", str(unmatched), "-r", SLUG, "--snapshot",
                             snap, env=env))
    assert "1 of 2 rows match no record" in err and "row 2: PMID 12345678" in err

    assert counts(db_url) == before


def test_a_decision_on_another_reviews_record_is_refused(
    ready: dict[str, str], material: Material, tmp_path: Path, db_url: str
) -> None:
    env = ready
    assert cli("init", env={**env, "REVIEWS_DIR": str(Path(__file__).parents[3] / "reviews")}
               ).returncode == 0
    ldh = {**env, "REVIEWS_DIR": str(Path(__file__).parents[3] / "reviews")}
    assert cli("update", "--snapshot", "demo", "--until", "2024-01-07", env=ldh).returncode == 0
    before = counts(db_url)
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("pmid,decision,reason\n99000101,include,\n")
    err = one_line_error(cli("import", "decisions", str(foreign), "-r", SLUG, "--snapshot",
                             str(material.snapshot), env=env))
    assert "records of another review (ldh_resorption), not of dry_eye_cl" in err
    assert counts(db_url) == before


def test_unknown_includes_format(ready: dict[str, str], tmp_path: Path) -> None:
    odd = tmp_path / "studies.bib"
    odd.write_text("@article{a, title={X}}\n")
    err = one_line_error(cli("import", "includes", str(odd), "-r", SLUG, env=ready))
    assert "not RIS, CSV or a list of PMIDs/DOIs" in err
