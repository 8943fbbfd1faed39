"""The seeded demo corpus: a small crawl, PDFs and document files with a ground truth (see ``demo.corpus``)."""

from demo.corpus import write_demo_corpus

__all__ = ["write_demo_corpus"]
