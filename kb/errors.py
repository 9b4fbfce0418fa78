"""Every error the knowledge base raises. One line each: where, which field, what value, what is allowed."""

from __future__ import annotations


class KBError(Exception):
    """Base class: anything the knowledge base refuses, with a message fit for one line."""


class RecordError(KBError):
    """A record is invalid. The message names the file, the record, the field, the value and the fix."""

    def __init__(self, problem: str, *, where: str = "", table: str = "", record=None,
                 field: str = "", value=None, allowed: str = ""):
        self.problem, self.where, self.table = problem, where, table
        self.record, self.field, self.value, self.allowed = record, field, value, allowed
        super().__init__(self._line())

    def _line(self) -> str:
        parts = [p for p in (self.where, self._record_label()) if p]
        head = ": ".join(parts)
        text = f"field '{self.field}': {self.problem}" if self.field else self.problem
        if self.allowed:
            text += f"; {self.allowed}"
        return f"{head}: {text}" if head else text

    def _record_label(self) -> str:
        return self.table if self.record is None else str(self.record)

    def located(self, where: str) -> RecordError:
        """The same error placed in a file, unless its record label already names one."""
        if not where or str(self.record or "").startswith(where) or self.where:
            return self
        return type(self)(self.problem, where=where, table=self.table, record=self.record,
                          field=self.field, value=self.value, allowed=self.allowed)


class DuplicateError(RecordError):
    """A record would repeat an id, key or DOI that already exists."""


class NotFoundError(KBError):
    """A study, effect, claim, link or source does not exist."""


class DependencyError(KBError):
    """A removal would orphan other records; say ``cascade=True`` to remove them too."""


class StoreError(KBError):
    """The database file cannot be opened, read or written (not soc-kb's, newer, damaged,
    read-only, disk full)."""


class FileFormatError(KBError):
    """A record file, CSV or BibTeX file cannot be read at all (syntax, encoding, layout)."""


class BibError(FileFormatError):
    """A BibTeX file or entry is malformed or incomplete."""
