"""A second review's material, written for these tests: a replay snapshot and the files a team
would bring from its earlier work.

The topic (dry eye among contact lens wearers) and every record are invented here; PMIDs 9870xxxx
are not PubMed's. The export files reproduce the structures the tools write (checked against
their documentation and public examples; no text of theirs is copied):

* ``includes.ris`` — a reference manager's RIS: ``TY``/``TI``/``AU``/``PY``/``JO``/``DO``, PMIDs in
  ``AN``; one study only by DOI, one not in PubMed at all (kept with its metadata);
* ``rayyan.ris`` — Rayyan's RIS export: the notes in ``N1`` as
  ``RAYYAN-INCLUSION: {"Name"=>"Excluded"} | RAYYAN-EXCLUSION-REASONS: wrong population``,
  identifiers sometimes missing (matched by title+year+first author);
* ``asreview.csv`` — ASReview LAB's CSV export: the imported columns plus ``asreview_label``
  (1, 0, empty when not seen), ``asreview_time``, ``asreview_note``, ``asreview_user_name``.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

from services.pubmed.xmlbuild import Article, write_article_set

QUERY = '("dry eye"[Title/Abstract] OR "Dry Eye Syndromes"[MeSH Terms]) AND "contact lens"[Title/Abstract]'
START = dt.date(2024, 1, 1)
JOURNAL = "Demo Journal of Ocular Surface Studies (test data)"
SURNAMES = ["Okafor", "Lindqvist", "Marchetti", "Haddad", "Nakamura", "Petrova", "Duarte",
            "Brennan", "Ivanova", "Castillo", "Moreau", "Singh", "Kowalczyk", "Adeyemi"]
COUNTRIES = ["Nigeria", "Sweden", "Italy", "Lebanon", "Japan", "Bulgaria", "Brazil", "Ireland"]
RELEVANT = [
    "Prevalence of dry eye symptoms among soft contact lens wearers in {c}: a cross-sectional survey",
    "Dry eye disease in daily contact lens users: a population-based study from {c}",
    "Frequency of contact lens discomfort and dry eye among university students in {c}",
    "Dry eye prevalence by lens type in a cohort of contact lens wearers in {c}",
]
OTHER = [
    "Corneal cross-linking for keratoconus progression: {n}-year outcomes in {c}",
    "Orthokeratology lenses and axial length in myopic children from {c}",
    "Microbial keratitis associated with extended contact lens wear: a case series from {c}",
    "Tear film osmolarity measurement devices compared in a laboratory study",
    "Cataract surgery and postoperative dry eye treated with lubricants: a randomised trial",
    "Scleral lens fitting in corneal ectasia: a retrospective review of {n} eyes",
    "Glaucoma drops preservatives and ocular surface staining in {c}",
    "Meibomian gland imaging with infrared meibography in healthy volunteers",
]


@dataclass
class Material:
    snapshot: Path
    includes_ris: Path
    rayyan_ris: Path
    asreview_csv: Path
    included_pmids: list[int]
    baseline_pmids: list[int]
    update_pmids: list[int]


def _relevant_abstract(rng: random.Random, country: str) -> list[tuple[str, str]]:
    n = rng.randint(120, 900)
    k = rng.randint(n // 5, n // 2)
    return [
        ("PURPOSE", f"To estimate how many contact lens wearers in {country} report dry eye."),
        ("METHODS", f"We surveyed {n} contact lens wearers with the Ocular Surface Disease Index "
                    "and measured tear break-up time."),
        ("RESULTS", f"Dry eye was present in {k} of {n} wearers ({100 * k / n:.1f}%); symptoms were "
                    "more common with longer daily wearing time."),
        ("CONCLUSIONS", "Dry eye is frequent among contact lens wearers."),
    ]


def _other_abstract(rng: random.Random, country: str) -> list[tuple[str, str]]:
    n = rng.randint(20, 400)
    return [("", f"In {n} patients from {country} we studied corneal findings, intraocular "
                 "pressure and visual acuity after treatment; complications were rare and the "
                 "procedure was safe. Contact lens wear was recorded as a covariate.")]


def _article(pmid: int, day: dt.date, relevant: bool, rng: random.Random) -> Article:
    country = rng.choice(COUNTRIES)
    template = rng.choice(RELEVANT if relevant else OTHER)
    title = template.format(c=country, n=rng.randint(2, 9))
    surname = rng.choice(SURNAMES)
    return Article(
        pmid=pmid, created=day, title=f"{title} ({pmid % 1000})", journal=JOURNAL,
        abstract=(_relevant_abstract if relevant else _other_abstract)(rng, country),
        authors=[(surname, "Ada", f"Eye Department, Demo Hospital, {country}")],
        doi=f"10.5555/demo.ocular.{pmid}",
        mesh=["Dry Eye Syndromes", "Contact Lenses", "Humans"] if relevant else ["Humans"],
        year=day.year,
    )


def build(folder: Path, *, seed: int = 3) -> Material:
    """Write the snapshot and the three export files under ``folder``."""
    rng = random.Random(seed)
    snapshot = folder / "snapshot"
    snapshot.mkdir(parents=True)
    baseline: list[tuple[Article, bool]] = []
    for i in range(70):
        relevant = i % 7 == 0
        day = dt.date(2019, 1, 1) + dt.timedelta(days=i * 20)
        baseline.append((_article(98700000 + i, day, relevant, rng), relevant))
    update = [
        _article(98710000 + i, START + dt.timedelta(days=i % 28), i % 5 == 0, rng)
        for i in range(30)
    ]
    write_article_set(snapshot / "baseline.xml", [a for a, _r in baseline])
    write_article_set(snapshot / "update.xml", update)
    included = [a for a, r in baseline if r][:6]
    material = Material(
        snapshot=snapshot,
        includes_ris=folder / "includes.ris",
        rayyan_ris=folder / "rayyan.ris",
        asreview_csv=folder / "asreview.csv",
        included_pmids=[a.pmid for a in included],
        baseline_pmids=[a.pmid for a, _r in baseline],
        update_pmids=[a.pmid for a in update],
    )
    _includes_ris(material.includes_ris, included)
    others = [a for a, r in baseline if not r]
    _rayyan_ris(material.rayyan_ris, others[:20], [a for a, r in baseline if r][6:8])
    _asreview_csv(material.asreview_csv, others[20:40])
    return material


def _ris(fields: list[tuple[str, str]]) -> str:
    return "".join(f"{tag}  - {value}\n" for tag, value in fields) + "ER  - \n\n"


def _includes_ris(path: Path, articles: list[Article]) -> None:
    parts = []
    for i, a in enumerate(articles):
        fields = [("TY", "JOUR"), ("TI", a.title), ("AU", f"{a.authors[0][0]}, {a.authors[0][1]}"),
                  ("PY", str(a.year)), ("JO", a.journal)]
        if i != 1:
            fields.append(("AN", str(a.pmid)))  # study 2 is found by its DOI only
        fields.append(("DO", f"https://doi.org/{a.doi}"))
        parts.append(_ris(fields))
    parts.append(_ris([("TY", "JOUR"), ("TI", "Dry eye in contact lens wearers: a thesis"),
                       ("AU", "Quispe, Rosa"), ("PY", "2021"), ("PB", "Demo University")]))
    path.write_text("".join(parts), encoding="utf-8")


def _rayyan_ris(path: Path, excluded: list[Article], included: list[Article]) -> None:
    reasons = ["wrong population", "wrong outcome", "wrong study design"]
    parts = []
    for i, a in enumerate(excluded):
        note = (f'RAYYAN-INCLUSION: {{"Ines"=>"Excluded", "Tomas"=>"Excluded"}} | '
                f"RAYYAN-EXCLUSION-REASONS: {reasons[i % 3]}")
        fields = [("TY", "JOUR"), ("TI", a.title), ("AU", f"{a.authors[0][0]}, A."),
                  ("PY", str(a.year)), ("JO", a.journal)]
        if i % 4 == 0:
            pass  # no identifier: matched by title, year and first author
        elif i % 4 == 1:
            fields.append(("DO", a.doi or ""))
        else:
            fields.append(("AN", str(a.pmid)))
        fields.append(("N1", note))
        parts.append(_ris(fields))
    for a in included:
        fields = [("TY", "JOUR"), ("TI", a.title), ("AU", f"{a.authors[0][0]}, A."),
                  ("PY", str(a.year)), ("AN", str(a.pmid)),
                  ("N1", 'RAYYAN-INCLUSION: {"Ines"=>"Included", "Tomas"=>"Included"} | '
                         "RAYYAN-LABELS: survey")]
        parts.append(_ris(fields))
    path.write_text("".join(parts), encoding="utf-8")


def _asreview_csv(path: Path, articles: list[Article]) -> None:
    columns = ["record_id", "title", "abstract", "authors", "year", "doi", "pubmed_id",
               "asreview_label", "asreview_time", "asreview_note", "asreview_user_name"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for i, a in enumerate(articles):
            seen = i < 16
            writer.writerow({
                "record_id": i, "title": a.title,
                "abstract": " ".join(text for _l, text in a.abstract),
                "authors": f"{a.authors[0][0]}, A.", "year": a.year,
                "doi": f"https://doi.org/{a.doi}", "pubmed_id": a.pmid if i % 2 else "",
                "asreview_label": "0" if seen else "",
                "asreview_time": f"2023-06-{1 + i % 28:02d} 10:{i:02d}:00" if seen else "",
                "asreview_note": "not about dry eye" if seen and i % 3 == 0 else "",
                "asreview_user_name": "lena" if seen else "",
            })
