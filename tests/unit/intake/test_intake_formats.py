"""Reading the tools' exports. Each fixture is written here in the structure the tool writes
(named in each test); the records are invented."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.intake.errors import MissingColumnsError, UnknownFormatError
from services.intake.formats import (
    clean_doi,
    clean_pmid,
    detect_decision_format,
    read_decisions,
    read_includes,
    read_ris,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_identifiers_from_the_cells_tools_write() -> None:
    assert clean_doi("https://doi.org/10.1234/ABC.5") == "10.1234/abc.5"
    assert clean_doi("doi:10.9999/x-y.") == "10.9999/x-y"
    assert clean_doi("no doi here") is None
    assert clean_pmid("PMID: 31415926") == 31415926
    assert clean_pmid("https://pubmed.ncbi.nlm.nih.gov/2718281/") == 2718281
    assert clean_pmid("") is None


def test_ris_continuation_lines_and_repeated_tags() -> None:
    records = read_ris("TY  - JOUR\nTI  - A long title\n  that wraps\nAU  - One, A\nAU  - Two, B\n"
                       "ER  - \n\nTY  - JOUR\nTI  - Second\nER  -\n")
    assert records[0]["TI"] == ["A long title that wraps"]
    assert records[0]["AU"] == ["One, A", "Two, B"]
    assert records[1]["TI"] == ["Second"]


def test_rayyan_csv_notes_with_two_reviewers(tmp_path: Path) -> None:
    # Rayyan's articles.csv: key,title,authors,journal,…,notes with RAYYAN-* parts and " | "
    path = write(tmp_path, "articles.csv", (
        "key,title,authors,journal,year,pubmed_id,doi,notes\n"
        '1,Fasting and migraine,"Ruiz, P and Olsen, K",J Demo,2018,27182818,,'
        '"RAYYAN-INCLUSION: {""Mara""=>""Excluded"", ""Joel""=>""Excluded""} | '
        'RAYYAN-LABELS: adults | RAYYAN-EXCLUSION-REASONS: wrong outcome,foreign language"\n'
        '2,Caffeine withdrawal headache,"Berg, L",J Demo,2019,,10.5555/cw.2,'
        '"RAYYAN-INCLUSION: {""Mara""=>""Included"", ""Joel""=>""Excluded""}"\n'
        '3,Sleep and headache,"Ng, T",J Demo,2020,,,"RAYYAN-INCLUSION: {""Mara""=>""Included""}"\n'
    ))
    assert detect_decision_format(path, path.read_text()) == "rayyan-csv"
    rows = read_decisions(path)
    assert [r.decision for r in rows] == ["exclude", "maybe", "include"]
    assert rows[0].reason == "wrong outcome,foreign language"
    assert rows[0].pmid == 27182818 and rows[0].first_author == "Ruiz"
    assert rows[1].doi == "10.5555/cw.2" and rows[1].note == "Mara=Included; Joel=Excluded"


def test_asreview_ris_labels_in_n1(tmp_path: Path) -> None:
    # ASReview LAB's RIS export: N1 carries ASReview_relevant / _irrelevant / _not_seen
    path = write(tmp_path, "asreview_result.ris", (
        "TY  - JOUR\nTI  - Kept\nAN  - 1001\nN1  - ASReview_relevant\nER  - \n"
        "TY  - JOUR\nTI  - Dropped\nDO  - 10.7777/d\nN1  - ASReview_irrelevant\nN1  - duplicate?\n"
        "ER  - \nTY  - JOUR\nTI  - Unseen\nN1  - ASReview_not_seen\nER  - \n"
    ))
    rows = read_decisions(path)
    assert [(r.decision, r.pmid, r.doi) for r in rows] == [
        ("include", 1001, None), ("exclude", None, "10.7777/d"), (None, None, None)]
    assert rows[1].note == "duplicate?"


def test_asreview_csv_older_included_column(tmp_path: Path) -> None:
    # ASReview LAB 1.x exported ``included`` 1/0/-1 (-1: not seen)
    path = write(tmp_path, "export.csv", "title,abstract,doi,included\nA,x,10.1111/a,1\nB,y,,0\nC,z,,-1\n")
    assert [r.decision for r in read_decisions(path)] == ["include", "exclude", None]


def test_covidence_list_from_its_file_name(tmp_path: Path) -> None:
    # Covidence: one CSV per list, named review_<id>_<list>_csv_<timestamp>.csv
    header = ("Title,Authors,Abstract,Published Year,Published Month,Journal,Volume,Issue,Pages,"
              "Accession Number,DOI,Ref,Covidence #,Study,Notes,Tags\n")
    path = write(tmp_path, "review_4242_excluded_csv_20250102.csv", header + (
        'Cold water swimming,"Holm, E",abs,2017,,J Demo,3,1,1-9,29979797,10.8888/cws,,#17,'
        'Holm 2017,Exclusion reason: Wrong setting,\n'))
    assert detect_decision_format(path, path.read_text()) == "covidence-csv"
    (row,) = read_decisions(path)
    assert (row.decision, row.reason, row.pmid, row.note) == (
        "exclude", "Wrong setting", 29979797, "Covidence #17")
    unnamed = write(tmp_path, "covidence.csv", path.read_text())
    with pytest.raises(MissingColumnsError, match="give --decision include"):
        read_decisions(unnamed)
    assert read_decisions(unnamed, decision="include")[0].decision == "include"


def test_plain_csv_and_its_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.csv", "pmid,decision,reason\n11,exclude,off topic\n12,Include,\n")
    rows = read_decisions(path)
    assert [(r.pmid, r.decision, r.reason) for r in rows] == [
        (11, "exclude", "off topic"), (12, "include", None)]
    bad = write(tmp_path, "bad.csv", "pmid,decision\n11,perhaps\n")
    with pytest.raises(UnknownFormatError, match="row 1: decision 'perhaps'"):
        read_decisions(bad)
    no_ids = write(tmp_path, "noid.csv", "who,decision\nx,include\n")
    with pytest.raises(MissingColumnsError, match="no column identifies the records"):
        read_decisions(no_ids)


def test_includes_from_an_identifier_list(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.txt", "31415926\ndoi:10.4444/abc\nhttps://doi.org/10.4444/def\n")
    rows = read_includes(path)
    assert [(r.pmid, r.doi) for r in rows] == [(31415926, None), (None, "10.4444/abc"),
                                               (None, "10.4444/def")]
    junk = write(tmp_path, "ids2.txt", "31415926\nnot an id\n")
    with pytest.raises(UnknownFormatError, match="line 2"):
        read_includes(junk, "ids")
