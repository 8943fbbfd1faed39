"""One way to drop a document: a :class:`Drop`, filed in the ledger as ``<step>/<reason>``.

Every drop names the step that made it and what it found (``detail``), and every stage
files it the same way: the removed shard of ``<stage>/_removed/<step>/<reason>/``, whose
``reason`` column a user groups by (``warc/bad_encoding``, ``fineweb/char_dup_ratio``,
``dedup/near_duplicate``, ``quality/below_threshold``). Steps come in three kinds, and each
hands over a Drop:

- a reader cannot file a drop, since the stage's intake must count the document first: it
  marks the document (:func:`mark`) and the intake files it (:func:`take_mark`);
- a datatrove filter returns ``(False, reason)``; its exclusion writer
  (``curation.shards.LabelledSink``) makes the Drop under the filter's step name, with the
  value the filter measured (``curation.drop_details``);
- any other step files its Drop itself: ``removed.write(doc, rank, Drop(...))``.
"""

from dataclasses import dataclass

from datatrove.data import Document

DROP_MARK = "_drop"  # metadata key of a reader's mark; the intake takes it off before anything is written


@dataclass(frozen=True)
class Drop:
    step: str  # the step that dropped the document: warc, pdf, jsonl, extract, language, dedup, quality, ...
    reason: str  # what it found, one word: bad_encoding, truncated, near_duplicate, below_threshold, ...
    detail: str | None = None  # the file and record, the measured value, the duplicate's id: for a person

    @property
    def label(self) -> str:
        return f"{self.step}/{self.reason}"


def mark(doc: Document, drop: Drop) -> Document:
    """A reader's document that the stage's intake will file as ``drop``."""
    doc.metadata[DROP_MARK] = drop
    return doc


def take_mark(doc: Document) -> Drop | None:
    return doc.metadata.pop(DROP_MARK, None)


def marked(doc: Document) -> Drop | None:
    """The drop a reader marked on ``doc``, left in place."""
    return doc.metadata.get(DROP_MARK)
