"""Footnote's exception hierarchy; every message says what happened, then what to do.

    FootnoteError
    ├── ConfigError
    ├── InputError
    ├── IngestError
    │   ├── UnsupportedFileError
    │   └── EmptyDocumentError
    ├── StoreError
    │   ├── IndexNotFoundError
    │   └── StaleIndexError
    └── BackendError (.retryable)
"""

from __future__ import annotations


class FootnoteError(Exception):
    """Base of every error Footnote raises on purpose."""


class ConfigError(FootnoteError):
    """Settings are invalid or contradict each other."""


class InputError(FootnoteError):
    """A question or other user input is unusable (empty, too long)."""


class IngestError(FootnoteError):
    """A source could not be read, fetched or indexed."""


class UnsupportedFileError(IngestError):
    """The file type is not one Footnote can read."""


class EmptyDocumentError(IngestError):
    """The source holds no extractable text."""


class StoreError(FootnoteError):
    """The index (Chroma or the keyword index) failed or is unusable."""


class IndexNotFoundError(StoreError):
    """No index exists yet for these settings."""


class StaleIndexError(StoreError):
    """The index was built with other settings (model, chunking)."""


class BackendError(FootnoteError):
    """An answer backend (LLM server) failed."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
