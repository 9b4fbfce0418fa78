"""soc-kb: an evidence knowledge base for soil organic carbon–climate feedbacks.

>>> from kb import KnowledgeBase
>>> kb = KnowledgeBase(":memory:")
>>> kb.studies(biome="boreal")            # doctest: +SKIP
"""

from .errors import (
    BibError,
    DependencyError,
    DuplicateError,
    FileFormatError,
    KBError,
    NotFoundError,
    RecordError,
    StoreError,
)
from .store import KnowledgeBase

__all__ = [
    "BibError",
    "DependencyError",
    "DuplicateError",
    "FileFormatError",
    "KBError",
    "KnowledgeBase",
    "NotFoundError",
    "RecordError",
    "StoreError",
]
