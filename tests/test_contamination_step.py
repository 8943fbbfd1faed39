"""The contamination step: a small benchmark with malformed rows, documents with its items planted, each action."""

import json
import pickle
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from classifiers.benchmarks import BenchmarkSpec
from classifiers.contamination_step import (
    REDACTED_EMPTY,
    ContaminationStep,
    build_index_file,
    load_index,
    merge_reports,
)
from curation.shards import RemovedSink, list_removed_shards

ITEMS = {
    0: {
        "question": "A baker makes 24 loaves of bread every morning and sells each loaf for 3 dollars. "
        "On Saturday he sold 18 loaves and gave 2 to his neighbour. How much money did he earn on Saturday?",
        "answer": "He sold 18 loaves at 3 dollars each, so he earned 18 * 3 = 54 dollars. #### 54",
    },
    2: {
        "question": "Which of the following planets in our solar system has the shortest orbital period "
        "around the sun?",
        "answer": ["Mercury", "Venus", "Mars", "Jupiter"],
    },
    4: {
        "question": "Write a function that returns the sum of the squares of all the odd numbers "
        "in a list of integers.",
        "answer": "def sum_odd_squares(numbers):\n    return sum(n * n for n in numbers if n % 2 == 1)",
    },
}
# Item ids are 0-based line numbers: the malformed rows sit between the items.
BENCHMARK_LINES = [
    json.dumps(ITEMS[0]),
    '{"question": "unterminated',
    json.dumps(ITEMS[2]),
    json.dumps({"question": "Where did the answer go?"}),
    json.dumps(ITEMS[4]),
]
PROSE = [
    "The river valley was settled by farmers who grew barley and kept sheep on the upper slopes.",
    "Over the following centuries the town became known for its wool market and its stone bridge.",
    "A railway line reached the valley late in the nineteenth century and brought visitors from the coast.",
    "Today the old mill houses a small museum about weaving, and the bridge is a listed monument.",
    "Walking routes follow the river through meadows and woods to the ruins of a medieval chapel.",
    "The chapel was abandoned after a flood, and its bell now hangs in the parish church in town.",
    "Every autumn a fair fills the market square with stalls selling cheese, honey and knitted goods.",
    "The valley school teaches about two hundred children, most of them from the surrounding farms.",
]


def item_text(item_id: int) -> str:
    item = ITEMS[item_id]
    answer = item["answer"]
    return "\n".join([item["question"], *(answer if isinstance(answer, list) else [answer])])


def planted(text: str) -> str:
    return " ".join(PROSE[:4] + [text] + PROSE[4:])


def change_numbers(text: str) -> str:
    return re.sub(r"\d+", lambda m: str(int(m.group()) + 7), text)


def documents() -> list[Document]:
    texts = {
        "clean": " ".join(PROSE),
        "verbatim_0": planted(item_text(0)),
        "verbatim_2": planted(item_text(2)),
        "numbers_0": planted(change_numbers(item_text(0))),
        "mostly_4": "From the exercise sheet: " + item_text(4),
    }
    return [Document(text=text, id=name) for name, text in texts.items()]


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> list[BenchmarkSpec]:
    path = tmp_path_factory.mktemp("benchmarks") / "toy.jsonl"
    path.write_text("\n".join(BENCHMARK_LINES) + "\n")
    return [BenchmarkSpec("toy", path, ("question", "answer"))]


@pytest.fixture(scope="module")
def index_path(specs, tmp_path_factory) -> Path:
    return build_index_file(specs, tmp_path_factory.mktemp("index") / "contamination.npz")


def run_step(step: ContaminationStep, docs: list[Document], rank: int = 0, world_size: int = 1) -> dict[str, Document]:
    return {doc.id: doc for doc in step.run(iter(docs), rank=rank, world_size=world_size)}


def removed_rows(stage_dir: Path) -> dict[str, dict]:
    return {row["id"]: row for path in list_removed_shards(stage_dir) for row in pq.read_table(path).to_pylist()}


def matched_items(doc: Document) -> set[int]:
    return {match["item_id"] for match in json.loads(doc.metadata["contamination"])}


def test_malformed_benchmark_rows_are_reported_not_fatal(specs, index_path):
    index = load_index(index_path)
    assert index.item_count("toy") == 3
    path = specs[0].path
    (bad_json, missing_field) = index.row_problems["toy"]
    assert bad_json.startswith(f"{path}:2: bad JSON")
    assert missing_field == f"{path}:4: missing field 'answer'"


def test_index_file_is_rebuilt_only_when_its_inputs_change(tmp_path):
    benchmark = tmp_path / "toy.jsonl"
    benchmark.write_text(json.dumps(ITEMS[0]) + "\n")
    specs = [BenchmarkSpec("toy", benchmark, ("question", "answer"))]
    path = build_index_file(specs, tmp_path / "index.npz")
    built = path.stat().st_mtime_ns
    assert build_index_file(specs, path).stat().st_mtime_ns == built
    benchmark.write_text(json.dumps(ITEMS[0]) + "\n" + json.dumps(ITEMS[2]) + "\n")
    build_index_file(specs, path)
    assert load_index(path).item_count("toy") == 2


def test_annotate_writes_the_column_and_keeps_every_document(tmp_path, index_path):
    step = ContaminationStep(index_path, tmp_path / "reports")
    kept = run_step(step, documents())
    assert list(kept) == [doc.id for doc in documents()]
    assert "contamination" not in kept["clean"].metadata
    assert matched_items(kept["verbatim_0"]) == {0}
    assert matched_items(kept["numbers_0"]) == {0}
    assert matched_items(kept["mostly_4"]) == {4}
    assert kept["verbatim_2"].text == planted(item_text(2))
    assert (tmp_path / "reports" / "00000.json").is_file()


def test_drop_sends_contaminated_documents_to_the_sink(tmp_path, index_path):
    stage = tmp_path / "stage"
    step = ContaminationStep(index_path, tmp_path / "reports", action="drop", removed=RemovedSink(stage))
    assert list(run_step(step, documents())) == ["clean"]
    removed = removed_rows(stage)
    assert sorted(removed) == ["mostly_4", "numbers_0", "verbatim_0", "verbatim_2"]
    assert {row["reason"] for row in removed.values()} == {"contamination/toy"}
    assert removed["verbatim_0"]["detail"] == "toy#0 exact=1.00 masked=1.00"
    assert removed["numbers_0"]["detail"].startswith("toy#0 exact=0.")
    assert removed["numbers_0"]["detail"].endswith("masked=1.00")
    assert json.loads(removed["verbatim_2"]["contamination"])[0]["item_id"] == 2


def test_redact_cuts_the_items_and_drops_what_is_left_too_short(tmp_path, index_path):
    stage = tmp_path / "stage"
    step = ContaminationStep(index_path, tmp_path / "reports", action="redact", removed=RemovedSink(stage))
    kept = run_step(step, documents())
    assert list(kept) == ["clean", "verbatim_0", "verbatim_2", "numbers_0"]
    for name in ("verbatim_0", "verbatim_2", "numbers_0"):
        assert all(sentence in kept[name].text for sentence in PROSE), name
        assert "loaves" not in kept[name].text and "orbital period" not in kept[name].text, name
        assert "contamination" in kept[name].metadata
    assert kept["clean"].text == " ".join(PROSE)
    removed = removed_rows(stage)
    assert list(removed) == ["mostly_4"]
    assert removed["mostly_4"]["reason"] == f"contamination/{REDACTED_EMPTY}"
    assert removed["mostly_4"]["text"] == "From the exercise sheet: " + item_text(4)
    assert removed["mostly_4"]["detail"].startswith("4 words left after redaction (< 50); toy#4")


def test_reports_of_all_ranks_merge_into_per_benchmark_counts(tmp_path, index_path, specs):
    reports = tmp_path / "reports"
    step = ContaminationStep(index_path, reports)
    docs = documents()
    run_step(step, docs[2:], rank=1, world_size=2)
    (reports / "00002.json").write_text("left by an earlier run with three tasks")
    run_step(step, docs[:2], rank=0, world_size=2)
    merged = merge_reports(reports)
    assert (merged["ranks"], merged["documents"]) == (2, 5)
    assert merged["benchmarks"] == [
        {
            "benchmark": "toy",
            "items": 3,
            "items_found": 3,  # item 0, found by both ranks, counts once
            "fraction_found": 1.0,
            "documents": 4,
            "malformed_rows": 2,
            "found_item_ids": [0, 2, 4],
        }
    ]
    path = specs[0].path
    assert [problem.split(": ")[0] for problem in merged["row_problems"]] == [f"{path}:2", f"{path}:4"]
    with pytest.raises(FileNotFoundError, match="no contamination reports"):
        merge_reports(tmp_path / "nowhere")


def test_step_settings_are_checked_and_it_pickles_without_the_index(tmp_path, index_path):
    with pytest.raises(ValueError, match="action must be one of"):
        ContaminationStep(index_path, tmp_path, action="erase")
    with pytest.raises(ValueError, match="pass the stage's RemovedSink"):
        ContaminationStep(index_path, tmp_path, action="drop")
    with pytest.raises(ValueError, match="threshold"):
        ContaminationStep(index_path, tmp_path, threshold=0)
    step = ContaminationStep(index_path, tmp_path, action="redact", removed=RemovedSink(tmp_path / "stage"))
    assert len(pickle.dumps(step)) < 10_000
