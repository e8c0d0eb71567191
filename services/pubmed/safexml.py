"""One parser for XML from outside (E-utilities answers, snapshot files): inert by construction.

lxml is told not to load a DTD, not to resolve entities and not to touch the network, and keeps
libxml2's size limits (no ``huge_tree``), so a DOCTYPE naming an ``http:``, ``https:`` or
``file:`` DTD is never fetched, an external entity never reads a file, and nested entity
definitions never expand. NCBI answers carry a DOCTYPE with a public DTD and no internal subset,
so a body that declares one (entities, elements) is refused whole with :class:`UnsafeXMLError`
rather than parsed in part.
"""

from __future__ import annotations

import re

from lxml import etree

from services.pubmed.errors import UnsafeXMLError

# a DOCTYPE with an internal subset: "<!DOCTYPE name [ ... ]>" or "<!DOCTYPE name SYSTEM ".." ["
_SUBSET = re.compile(rb"<!DOCTYPE\s[^\[>]*\[")

PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False
)


def parse_untrusted(body: bytes, what: str) -> etree._Element:
    """The root of ``body``; :class:`UnsafeXMLError` for an internal DTD subset or an entity.

    Raises ``lxml.etree.XMLSyntaxError`` for a body that is not well-formed XML. The subset is
    looked for before parsing, so nested entity definitions are refused, not half-expanded.
    """
    if _SUBSET.search(body[:65_536]):
        raise _declares(what)
    root = etree.fromstring(body, PARSER)
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and (
        next(dtd.iterentities(), None) is not None or next(dtd.iterelements(), None) is not None
    ):
        raise _declares(what)
    if next(root.iter(etree.Entity), None) is not None:
        raise UnsafeXMLError(
            f"{what} answer uses an entity reference that E-utilities never sends: refused, "
            "nothing of it stored"
        )
    return root


def _declares(what: str) -> UnsafeXMLError:
    return UnsafeXMLError(
        f"{what} answer declares its own DTD subset (entities or elements), which "
        "E-utilities never sends: refused, nothing of it stored"
    )
