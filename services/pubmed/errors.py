"""Errors of the PubMed client.

Every one of them ends the run failed (or held) with its message as the reason, and keeps the
window: the next run asks for the same create dates again.

PubMedError
├── EntrezUnavailableError   E-utilities failed after every retry (429/5xx, timeouts, resets,
│                            truncated or malformed bodies); the message says what and how often
├── EntrezQueryError         E-utilities refused the request (4xx other than 429, an <ERROR>
│                            element in the answer): the query or parameters need fixing
├── SearchAlteredError       esearch answered, but not for the query as written: its count is
│   │                        not the count of the review's query
│   ├── TermNotFoundError      an ErrorList (PhraseNotFound, FieldNotFound): a term or field
│   │                          tag matched nothing and was left out
│   ├── TermDroppedError       a WarningList (QuotedPhraseNotFound, PhraseIgnored): a phrase
│   │                          was dropped from the search
│   └── QueryTranslationError  a word of the query is missing from the QueryTranslation
├── MalformedResponseError   a body that is not the XML expected, or lacks a part the request
│                            asked for (a WebEnv); retried as transient
├── UnsafeXMLError           an answer declaring a DTD internal subset or entities (never sent
│                            by NCBI): refused whole, nothing of it parsed or stored
├── WindowTooLargeError      one day of create dates matches more records than esearch can return
└── IncompleteFetchError     efetch kept answering without some records esearch found, even
                             when they were asked for again by PMID (the run keeps its window)
"""


class PubMedError(Exception):
    """Base of the PubMed client's errors."""


class EntrezUnavailableError(PubMedError):
    """E-utilities could not be reached or kept failing after every retry."""


class EntrezQueryError(PubMedError):
    """E-utilities refused the request as malformed."""


class SearchAlteredError(PubMedError):
    """esearch searched something other than the query as written."""


class TermNotFoundError(SearchAlteredError):
    """esearch's ErrorList: a phrase or field tag of the query matched nothing and was dropped."""


class TermDroppedError(SearchAlteredError):
    """esearch's WarningList: a quoted phrase was not found, or a phrase was ignored."""


class QueryTranslationError(SearchAlteredError):
    """esearch's QueryTranslation lacks a word of the query."""


class MalformedResponseError(PubMedError):
    """The response body is not the complete XML document expected."""


class UnsafeXMLError(PubMedError):
    """The response declares a DTD internal subset or entities; it is refused unread."""


class WindowTooLargeError(PubMedError):
    """A single-day create-date window still exceeds the esearch cap."""


class IncompleteFetchError(PubMedError):
    """Records esearch found stayed missing from efetch's answers, even asked for by PMID."""
