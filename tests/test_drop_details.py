"""Every heuristic drop says what was measured: the value, the threshold, what was counted."""

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

from curation.drop_details import Measured
from curation.shards import FILTER_DETAIL

PROSE = ("The valley was settled by farmers who grew barley and kept sheep on the hills. " * 3).strip()
CASES = [
    (FineWebQualityFilter(), "a line without an end\nanother such line\n" * 5, "line_punct_ratio",
     "line_punct_ratio 0.000 < 0.12 (10 lines)"),
    (FineWebQualityFilter(), "\n".join(["Short line."] * 9 + [PROSE]), "short_line_ratio",
     "short_line_ratio 0.900 > 0.67 (lines of <= 30 chars, 10 lines)"),
    (C4QualityFilter(filter_no_terminal_punct=False), f"{PROSE}\nconfig = {{'a': 1}}\n{PROSE}", "curly_bracket",
     "curly_bracket: 1 of 3 lines with '{' (first: line 2)"),
    (C4QualityFilter(filter_no_terminal_punct=False), "One sentence here, with enough words in it.", "too_few_sentences",
     "too_few_sentences: 1 < 5 (in 1 of 1 lines with >= 3 words)"),
    (GopherQualityFilter(), "too short", "gopher_short_doc", "gopher_short_doc: 2 words < 50"),
    (GopherQualityFilter(min_doc_words=1), " ".join(["the and of that"] * 20 + ["#tag #tag #tag"] * 30), "gopher_too_many_hashes",
     "gopher_too_many_hashes: '#' per word 0.346 > 0.1"),  # datatrove counts each '#' as a word too
    (GopherRepetitionFilter(), "same line again\n" * 20 + "a different line", "dup_line_frac",
     "duplicated lines 19 of 21 = 0.905 > 0.3"),
]


@pytest.mark.parametrize(("inner", "text", "reason", "detail"), CASES, ids=[case[2] for case in CASES])
def test_a_drop_names_the_measured_value_and_the_threshold(inner, text, reason, detail):
    doc = Document(text=text, id="d")
    assert Measured(inner).filter(doc) == (False, reason)
    assert doc.metadata[FILTER_DETAIL] == detail and doc.text == text


def test_a_kept_document_gets_no_detail():
    doc = Document(text=f"{PROSE}\nIn winter the snow closes the pass, and the town keeps to itself until spring.", id="d")
    assert Measured(FineWebQualityFilter()).filter(doc) is True and FILTER_DETAIL not in doc.metadata
