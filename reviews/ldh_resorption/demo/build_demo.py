"""Build the LDH review's demo replay snapshot: DEMO DATA, written for this project.

None of these records is a real PubMed citation: the PMIDs (9900xxxx) are not PubMed's, the
abstracts were written to look like the field's abstracts, and the journal is a demo journal.
Two records deliberately repeat baseline studies of the seed review (one by DOI, one by title,
year and first author) so that the update links them instead of queueing them.

The records span two create-date weeks (2024-01-01..07 and 2024-01-08..14) so that two
successive updates show incremental harvesting:

    living-review update --snapshot demo --until 2024-01-07
    living-review update --snapshot demo --until 2024-01-14

A third file, ``baseline.xml``, is the baseline search period (create dates before the
protocol's start date, 2023-10-01) for ``living-review backfill --snapshot demo``: records for
eight of the seed's included studies (their bibliographic data from ``baseline/references.csv``,
short abstracts written here) and 36 records the query would also find that the seed did not
include (surgical series, other spine levels, imaging methods, reviews), generated from
templates. After a backfill, those 36 are the review's inferred excludes and the first update
trains a real model instead of ranking by similarity.

Run ``python reviews/ldh_resorption/demo/build_demo.py`` to rewrite the XML files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from services.pubmed.xmlbuild import Article, write_article_set

HERE = Path(__file__).resolve().parent
JOURNAL = "Demo Journal of Spine Research (demo data)"
D = dt.date


def _a(pmid: int, day: dt.date, title: str, abstract: list[tuple[str, str]], **kw: object) -> Article:
    kw.setdefault("journal", JOURNAL)
    kw.setdefault("authors", [("Demo", "Author", "Department of Orthopaedics, Demo Hospital, Demo City, Japan")])
    kw.setdefault("mesh", ["Intervertebral Disc Displacement", "Lumbar Vertebrae", "Humans"])
    return Article(pmid=pmid, created=day, title=title, abstract=abstract, **kw)  # type: ignore[arg-type]


WEEK1 = [
    _a(99000101, D(2024, 1, 2),
       "Spontaneous resorption of lumbar disc herniation under conservative care: a prospective MRI cohort",
       [("BACKGROUND", "The frequency of spontaneous resorption of lumbar disc herniation remains uncertain."),
        ("METHODS", "We prospectively followed 62 patients with symptomatic lumbar disc herniation treated "
                    "conservatively, with magnetic resonance imaging at baseline and at 12 months."),
        ("RESULTS", "Of 62 patients, 41 (66.1%) showed resorption of the herniated fragment. Resorption was "
                    "more frequent in extrusions than in protrusions. Mean age was 44 years (range 21-70); "
                    "35 were men and 27 women."),
        ("CONCLUSIONS", "Two thirds of lumbar disc herniations resorbed within one year.")],
       authors=[("Tanaka", "Hiro", "Department of Orthopaedic Surgery, Demo University, Osaka, Japan")],
       publication_types=["Journal Article"], keywords=["resorption", "MRI", "conservative treatment"]),
    _a(99000102, D(2024, 1, 3),
       "Regression of sequestered lumbar disc fragments on follow-up MRI: a retrospective study of 118 patients",
       [("", "We retrospectively reviewed 118 patients with sequestered lumbar disc herniation managed without "
             "surgery. Follow-up MRI at a median of 9 months showed regression in 97 cases (82.2%). Rim "
             "enhancement on gadolinium MRI predicted regression.")],
       authors=[("Kim", "Min", "Department of Neurosurgery, Demo Medical Center, Seoul, Korea")]),
    _a(99000103, D(2024, 1, 3),
       "Spontaneous regression of lumbar disc herniation: a narrative review",
       [("", "This review summarises the evidence on spontaneous regression of herniated lumbar discs and its "
             "mechanisms, including macrophage infiltration and neovascularisation.")],
       publication_types=["Journal Article", "Review"]),
    _a(99000104, D(2024, 1, 4),
       "Complete spontaneous resorption of a massive sequestered lumbar disc herniation: a case report",
       [("", "We report a 38-year-old man whose massive sequestered L4-5 disc herniation disappeared "
             "completely on MRI six months after onset, with conservative treatment.")],
       publication_types=["Case Reports"]),
    _a(99000105, D(2024, 1, 4),
       "[Spontaneous resorption of lumbar disc herniations: results of conservative therapy]",
       [("", "Bei 40 Patienten mit lumbalem Bandscheibenvorfall zeigte sich in 26 Fällen eine Resorption "
             "im MRT nach sechs Monaten.")],
       language="ger", authors=[("Müller", "Anna", "Klinik für Orthopädie, Demo-Klinikum, Berlin, Germany")]),
    _a(99000106, D(2024, 1, 5),
       "Clinical and Radiological Follow-Up Results of Patients with Sequestered Lumbar Disc Herniation: "
       "A Prospective Cohort Study",
       [("OBJECTIVE", "To evaluate clinical and radiological outcomes of sequestered lumbar disc herniation."),
        ("RESULTS", "Of 55 patients, 49 (89.1%) showed resorption at follow-up MRI.")],
       year=2021, doi="10.1159/000515308", journal="Med Princ Pract",
       authors=[("Sucuoğlu", "Hamza", "Turkey"), ("Barut", "AY", "Turkey")]),
    _a(99000107, D(2024, 1, 5),
       "Full-endoscopic versus microscopic discectomy for lumbar disc herniation: a randomized trial",
       [("", "We randomised 200 patients to full-endoscopic or microscopic discectomy. Leg pain and "
             "disability improved equally; reoperation occurred in 7 patients. Herniation recurrence did "
             "not differ.")],
       publication_types=["Journal Article", "Randomized Controlled Trial"]),
    _a(99000108, D(2024, 1, 6),
       "Modic changes and the likelihood of lumbar disc herniation resorption",
       [("PURPOSE", "To assess whether Modic changes predict spontaneous resorption."),
        ("METHODS", "A cohort of 150 patients with lumbar disc herniation had repeat MRI."),
        ("RESULTS", "Resorption occurred in 88 of 150 patients (58.7%). Type 1 Modic change was associated "
                    "with less resorption (odds ratio 0.41).")]),
    _a(99000109, D(2024, 1, 6),
       "Monocyte chemoattractant protein-1 expression in resorbing human lumbar disc herniation tissue",
       [("", "Herniated nucleus pulposus tissue from 24 patients was stained for MCP-1, TNF-α and MMP-3. "
             "Expression of MCP-1 and MMP-3 was higher in extruded than in protruded specimens, supporting "
             "macrophage-mediated resorption.")]),
    _a(99000110, D(2024, 1, 7),
       "Lumbar disc herniation resorption: what should we tell patients?",
       [], publication_types=["Journal Article"]),
]

WEEK2 = [
    _a(99000201, D(2024, 1, 9),
       "Resorption of lumbar disc extrusions after conservative treatment: a prospective observational study",
       [("BACKGROUND", "Extruded lumbar disc herniations may resorb without surgery."),
        ("METHODS", "Eighty consecutive patients with lumbar disc extrusion were followed with MRI for 2 years."),
        ("RESULTS", "Resorption was observed in 58 of 80 patients (72.5%); complete disappearance in 21."),
        ("CONCLUSIONS", "Most extrusions resorb; surgery can often be deferred.")],
       authors=[("Rossi", "Marco", "Department of Radiology, Demo Hospital, Milan, Italy")]),
    _a(99000202, D(2024, 1, 9),
       "Prevalence of spontaneous resorption of lumbar disc herniation: a systematic review and meta-analysis",
       [("", "We pooled 30 studies of spontaneous resorption of lumbar disc herniation.")],
       publication_types=["Journal Article", "Systematic Review", "Meta-Analysis"]),
    _a(99000203, D(2024, 1, 10),
       "Retraction Note: Regression of sequestered lumbar disc fragments on follow-up MRI: a retrospective "
       "study of 118 patients",
       [], publication_types=["Retraction of Publication"],
       corrections=[("RetractionOf", "Demo J Spine Res. 2024", 99000102)]),
    _a(99000204, D(2024, 1, 11),
       "Magnetic resonance imaging in follow-up assessment of sciatica",
       [("BACKGROUND", "MRI is often repeated in patients with sciatica."),
        ("RESULTS", "At 1 year, disc herniation had disappeared or regressed in most patients.")],
       year=2013, journal="N Engl J Med",
       authors=[("el Barzouhi", "Abdelilah", "Leiden University Medical Center, Leiden, the Netherlands")]),
    _a(99000205, D(2024, 1, 11),
       "Spontaneous regression of cervical disc herniation: a retrospective MRI study",
       [("", "Among 45 patients with cervical disc herniation, regression occurred in 30 (66.7%).")],
       mesh=["Intervertebral Disc Displacement", "Cervical Vertebrae", "Humans"]),
    _a(99000206, D(2024, 1, 12),
       "Macrophage infiltration and VEGF in a rat model of disc herniation resorption",
       [("", "In 36 rats, autologous nucleus pulposus placed in the epidural space regressed by day 28, with "
             "macrophage infiltration and VEGF expression.")],
       publication_types=["Journal Article"], mesh=["Intervertebral Disc Displacement", "Rats", "Animals"]),
    _a(99000207, D(2024, 1, 12),
       "[Natural history of lumbar disc herniation in Japanese patients]",
       [("", "Abstract available in Japanese only.")], language="jpn"),
    _a(99000208, D(2024, 1, 13),
       "Comment on: spontaneous resorption of lumbar disc herniation",
       [], publication_types=["Comment"]),
    _a(99000209, D(2024, 1, 13),
       "Transforaminal epidural steroid injection and resorption of lumbar disc herniation: a randomized trial",
       [("METHODS", "One hundred patients were randomized to injection or physiotherapy; MRI at 6 months."),
        ("RESULTS", "The herniation regressed in 34 of 50 patients after injection and in 29 of 50 after "
                    "physiotherapy (68% vs 58%).")],
       publication_types=["Journal Article", "Randomized Controlled Trial"],
       authors=[("Silva", "Ana", "Department of Physical Medicine, Demo University Hospital, Porto, Portugal")]),
]


BASELINE_INCLUDED_REFS = (20, 21, 22, 23, 24, 25, 26, 27)
OFF_TOPIC = (
    ("Microendoscopic discectomy versus open discectomy for lumbar disc herniation: {n} patients",
     "We compared operative time, blood loss and return to work after microendoscopic or open "
     "discectomy in {n} patients with lumbar disc herniation operated on at our centre."),
    ("Recurrent lumbar disc herniation after discectomy: risk factors in {n} operated patients",
     "Among {n} patients operated on for lumbar disc herniation, reherniation occurred in a "
     "minority; obesity and smoking were associated with recurrence after surgery."),
    ("Cervical disc herniation treated by anterior fusion: {n}-case series",
     "We report fusion rates and neck disability after anterior cervical discectomy and fusion "
     "in {n} patients with cervical disc herniation and radiculopathy."),
    ("Diagnostic accuracy of a deep learning model for detecting lumbar disc herniation on MRI",
     "A convolutional network trained on {n} lumbar MRI studies detected disc herniation with "
     "high sensitivity compared with two radiologists; no follow-up imaging was analysed."),
    ("Lumbar disc herniation and regression: a narrative review of mechanisms",
     "This review discusses inflammatory mechanisms proposed for the regression of herniated "
     "disc tissue and summarises {n} published reports without new patient data."),
    ("Percutaneous endoscopic lumbar discectomy under local anaesthesia: {n} cases",
     "Percutaneous endoscopic discectomy was performed in {n} patients with lumbar disc "
     "herniation; leg pain scores improved and complications were recorded."),
    ("Thoracic disc herniation: presentation and surgical management in {n} patients",
     "We describe myelopathy, imaging and transthoracic surgery in {n} patients with thoracic "
     "disc herniation; spontaneous regression was not observed in this surgical cohort."),
    ("Pregabalin for sciatica from lumbar disc herniation: a randomised placebo-controlled trial",
     "In {n} patients with sciatica, pregabalin did not reduce leg pain more than placebo at 8 "
     "weeks; imaging outcomes were not collected."),
    ("Cost of lumbar disc herniation surgery in a national insurance database",
     "Claims of {n} patients undergoing lumbar discectomy were analysed for direct costs and "
     "readmissions in the first year after surgery."),
)
BASELINE_NAMES = ("Novak", "Osei", "Ferreira", "Lindgren", "Yamamoto", "Rossi", "Ahmed",
                  "Kowalski", "Dubois", "Park", "Meyer", "Costa")


def _references() -> dict[int, dict[str, str]]:
    import csv

    with (HERE.parent / "baseline" / "references.csv").open(encoding="utf-8") as handle:
        return {int(row["ref"]): row for row in csv.DictReader(handle)}


def baseline_period() -> list[Article]:
    """Records created before the protocol's start date: the baseline search period."""
    refs = _references()
    articles = []
    for i, ref in enumerate(BASELINE_INCLUDED_REFS):
        row = refs[ref]
        surname = row["authors"].split(",")[0].split(" ")[0]
        year = int(row["year"])
        articles.append(_a(
            99000001 + i, D(min(year, 2023), 3 + i % 6, 10), row["title"],
            [("", "Patients with lumbar disc herniation treated conservatively had follow-up MRI; "
                  "the share whose herniation resorbed is reported with its predictors.")],
            year=year, doi=row["doi"] or None, journal=row["journal"],
            authors=[(surname, "A", "Demo affiliation")]))
    for i in range(36):
        title, text = OFF_TOPIC[i % len(OFF_TOPIC)]
        n = 24 + (i * 37) % 400
        articles.append(_a(
            99000050 + i, D(2016 + i % 7, 1 + i % 12, 1 + i % 27), title.format(n=n),
            [("", text.format(n=n))], year=2016 + i % 7,
            authors=[(BASELINE_NAMES[i % len(BASELINE_NAMES)], "B", "Demo Spine Centre")]))
    return articles


def main() -> None:
    write_article_set(HERE / "week1.xml", WEEK1)
    write_article_set(HERE / "week2.xml", WEEK2)
    baseline = baseline_period()
    write_article_set(HERE / "baseline.xml", baseline)
    print(f"wrote {len(WEEK1)} + {len(WEEK2)} demo records and {len(baseline)} baseline-period "
          f"records to {HERE}")


if __name__ == "__main__":
    main()
