"""Errors of the PubMed client.

PubMedError
├── EntrezUnavailableError   E-utilities failed after every retry (429/5xx, timeouts, resets,
│                            truncated or malformed bodies); the message says what and how often
├── EntrezQueryError         E-utilities refused the request (4xx other than 429, an ERROR in the
│                            esearch result): the query or parameters need fixing
├── MalformedResponseError   a body that is not the XML expected (retried as transient)
└── WindowTooLargeError      one day of create dates matches more records than esearch can return
"""


class PubMedError(Exception):
    """Base of the PubMed client's errors."""


class EntrezUnavailableError(PubMedError):
    """E-utilities could not be reached or kept failing after every retry."""


class EntrezQueryError(PubMedError):
    """E-utilities refused the request as malformed."""


class MalformedResponseError(PubMedError):
    """The response body is not the complete XML document expected."""


class WindowTooLargeError(PubMedError):
    """A single-day create-date window still exceeds the esearch cap."""
