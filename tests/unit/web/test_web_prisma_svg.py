"""The PRISMA SVG is well-formed XML, shows the counts and escapes reasons."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from services.screening.prisma import PrismaCounts, UpdateCount
from services.web.prisma_svg import prisma_svg


def test_counts_appear_and_svg_parses():
    counts = PrismaCounts(
        previous_studies=31,
        identified=120,
        duplicates=4,
        auto_excluded_rule=30,
        auto_excluded_model=50,
        screened=36,
        awaiting=6,
        excluded_title_abstract=20,
        full_text_assessed=10,
        excluded_full_text={"No usable data": 7, "<b>bad</b> & co": 1},
        new_studies=2,
        total_studies=33,
        per_update=[UpdateCount(1, dt.date(2025, 1, 6), 120)],
    )
    svg = prisma_svg(counts)
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for expected in (
        "Studies included in previous version: 31",
        "Total: 120",
        "Duplicates of known studies: 4",
        "Ineligible by protocol rules (automation): 30",
        "Ineligible by the classifier (automation): 50",
        "Awaiting screening: 6",
        "No usable data: 7",
        "<b>bad</b> & co: 1",
        "Update of 2025-01-06: 120",
        "33 (reports: 0)",
        "Reports not retrieved",
    ):
        assert expected in texts, expected
