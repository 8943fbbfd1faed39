"""The demo corpus through ingest, filter and dedup on a real LocalCluster, scored against its ground truth."""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from demo import write_demo_corpus
from demo.eval import demo_scores
from pipelines.config import parse_config
from pipelines.run import RunDir
from pipelines.runner import run_stage
from pipelines.sql import query
from pipelines.stages import STAGES
from tests.conftest import SHARED_DATA
from tests.warcs import write_pages_warc

SCALE = 0.4
DEMO_CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "demo" / "demo.yaml").read_text())
BROKEN_SHARED = ("example-bad-non-chunked.warc.gz", "example-wrong-chunks.warc.gz")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, client):
    root = tmp_path_factory.mktemp("runs")
    sources = [source | ({"ocr": source["ocr"] | {"dpi": 200}} if source["kind"] == "pdf" else {}) for source in DEMO_CONFIG["ingest"]["sources"]]
    config = parse_config(
        {
            "run": {"name": "demo", "root": str(root)},
            "ingest": {"sources": sources},
            "filter": DEMO_CONFIG["filter"],
            "tokenize": {"tokenizer": {"vocab_size": 2048, "sample_docs": 500}},
            "classify": DEMO_CONFIG["classify"],
        }
    )
    run = RunDir(config.run_dir)
    write_demo_corpus(run.input_dir, scale=SCALE, seed=0)
    warcs = run.input_dir / "warc"
    write_pages_warc(root / "whole.warc.gz", 12, seed=99, extras=False)
    whole = (root / "whole.warc.gz").read_bytes()
    (warcs / "zz-truncated.warc.gz").write_bytes(whole[: len(whole) // 2])
    if SHARED_DATA.is_dir():
        for name in BROKEN_SHARED:
            shutil.copy(SHARED_DATA / "warc" / name, warcs / f"zz-{name}")
    document_stages = [name for name in STAGES if name not in ("proxies", "mix", "anneal")]  # tested on their own
    summaries = [run_stage(config, STAGES[name], client, Console(quiet=True)) for name in document_stages]
    return run, {s.name: s for s in summaries}


def sql(run, text):
    return query(run.path, text)[1]


def test_ledger_balances_for_every_stage_and_rank(demo_run):
    run, summaries = demo_run
    manifest = json.loads(run.manifest_path.read_text())
    tasks = sum(entry.get("tasks", 0) for entry in manifest["stages"].values())
    assert sql(run, "select count(*), bool_and(balanced) from ledger") == [(tasks, True)]
    for name in ("ingest", "filter", "dedup"):
        stage = manifest["stages"][name]
        assert stage["state"] == "complete"
        assert stage["counts"]["in"] == stage["counts"]["kept"] + sum(stage["counts"]["removed"].values())
    assert manifest["stages"]["filter"]["counts"]["in"] == manifest["stages"]["ingest"]["counts"]["kept"]
    assert manifest["stages"]["dedup"]["counts"]["in"] == manifest["stages"]["filter"]["counts"]["kept"]
    assert {"datatrove", "dask", "duckdb"} <= set(manifest["packages"])
    assert all("sha256" in info for info in manifest["inputs"].values())
    assert sql(run, "select count(*) from ingest") == [(summaries["ingest"].counts["kept"],)]


def test_broken_warcs_are_ledger_entries_naming_the_file(demo_run):
    run, _ = demo_run
    rows = sql(run, "select detail from removed where stage = 'ingest' and reason = 'warc/corrupt' order by detail")
    details = [r[0] for r in rows]
    cut = sql(run, "select detail from removed where stage = 'ingest' and reason = 'warc/truncated'")
    assert len(cut) == 1 and "zz-truncated.warc.gz" in cut[0][0] and "file truncated" in cut[0][0]
    if SHARED_DATA.is_dir():
        assert sum(any(name in d for d in details) for name in BROKEN_SHARED) == 2
    good = sql(run, "select count(*) from ingest where warc_file like '%zz-truncated%'")[0][0]
    assert good > 0  # the records before the cut were kept


def test_ingest_reads_every_html_page_and_detects_legacy_charsets(demo_run):
    run, _ = demo_run
    gt_pages = sql(run, f"select count(*) from read_parquet('{run.input_dir}/ground_truth.parquet') where source in ('web', 'web_pdf')")[0][0]
    read = sql(run, f"""select count(distinct g.doc_key) from read_parquet('{run.input_dir}/ground_truth.parquet') g
                         join (select url from ingest union all select url from removed where stage = 'ingest') r on r.url = g.doc_key""")
    assert read[0][0] == gt_pages
    charsets = dict(sql(run, "select charset, count(*) from ingest group by 1"))
    assert {"utf-8", "windows-1252", "iso-8859-1"} <= set(charsets)


def test_document_sources_are_read_under_their_names_and_domains(demo_run):
    run, _ = demo_run
    truth = dict(sql(run, f"""select source, count(*) from read_parquet('{run.input_dir}/ground_truth.parquet')
                              where source like '%_dump' group by 1"""))
    read = sql(run, "select source, domain, count(*) from ingest where source like '%_dump' group by all order by 1")
    assert read == [("code_dump", "code", truth["code_dump"]), ("qa_dump", "forum", truth["qa_dump"]), ("wiki_dump", "wiki", truth["wiki_dump"])]
    drops = dict(sql(run, "select reason, count(*) from removed where stage = 'ingest' and source = 'wiki_dump' group by 1"))
    assert drops == {"jsonl/bad_json": 1, "jsonl/no_text": 1}  # the two bad lines of the dump, each a ledger row
    ids = sql(run, f"""select count(*) from ingest i join read_parquet('{run.input_dir}/ground_truth.parquet') g
                       on i.id = g.source || '/' || g.doc_key where g.source like '%_dump'""")[0][0]
    assert ids == sum(truth.values())
    assert sql(run, "select count(*) from ingest where source = 'web' and domain is not null") == [(0,)]  # domain: classify
    kept = dict(sql(run, "select source, count(*) from dedup where source like '%_dump' group by 1"))
    assert kept["wiki_dump"] >= 0.95 * truth["wiki_dump"] and kept["code_dump"] >= 0.95 * truth["code_dump"]  # trusted


def test_filter_and_dedup_meet_the_ground_truth_thresholds(demo_run):
    run, _ = demo_run
    scores = demo_scores(run.path)
    assert scores["lang_accuracy_multilingual"] >= 0.98
    assert scores["spam_recall"] >= 0.9, scores
    assert scores["good_pages_lost"] <= 0.03, scores
    assert scores["near_dup_precision"] >= 0.95
    assert scores["near_dup_recall"] >= 0.95
    assert scores["exact_dup_recall"] >= 0.97
    assert scores["unique_pages_lost_to_dedup"] <= 0.01


def test_removed_reasons_and_lineage_are_queryable(demo_run):
    run, _ = demo_run
    reasons = {(stage, reason) for stage, reason, _ in sql(run, "select stage, reason, count(*) from removed group by all")}
    for expected in [("filter", "license/opt_out"), ("filter", "language/fr"), ("filter", "language/es"), ("dedup", "dedup/exact_duplicate"), ("dedup", "dedup/near_duplicate")]:
        assert expected in reasons
    assert any(stage == "filter" and reason.startswith("gopher_repetition/") for stage, reason in reasons)
    assert [reason for _, reason in reasons if not re.fullmatch(r"[a-z0-9_]+/[A-Za-z0-9_.\-/]+", reason)] == []  # <step>/<reason>, every stage
    unexplained = sql(run, """select count(*) from removed where stage = 'filter'
                              and regexp_matches(reason, '^(gopher_repetition|gopher_quality|c4|fineweb)/') and coalesce(detail, '') = ''""")
    assert unexplained == [(0,)]  # every heuristic drop says what was measured
    orphans = sql(run, """select count(*) from removed r where r.stage = 'dedup'
                          and (r.dup_of is null or r.dup_of not in (select id from dedup union all select id from removed where stage = 'dedup'))""")
    assert orphans == [(0,)]
    foreign = sql(run, f"select count(*) from filter f join read_parquet('{run.input_dir}/ground_truth.parquet') g on g.doc_key = f.url where g.lang <> 'en'")
    assert foreign == [(0,)]
    licensed = dict(sql(run, "select license, count(*) from filter group by 1"))
    assert {"cc-by", "cc-by-sa", "cc0"} <= set(licensed)


def test_pdfs_text_layer_and_scanned_come_out_as_documents(demo_run):
    run, _ = demo_run
    truth = sql(run, f"""select g.doc_key, g.needs_ocr, i.source, i.ocr_pages, i.title, i.page_count, i.text
                         from read_parquet('{run.input_dir}/ground_truth.parquet') g
                         left join ingest i on i.pdf_path like '%/' || g.doc_key
                         where g.source = 'pdf' and not g.is_broken""")
    assert truth and all(row[2] is not None for row in truth), "every readable PDF is a document"
    for key, needs_ocr, source, ocr_pages, title, page_count, text in truth:
        assert source == "pdf" and bool(ocr_pages) == needs_ocr, key  # the source's name; OCR shows in ocr_pages
        assert title and page_count >= 1 and len(text.split()) > 50
    broken = sql(run, "select detail from removed where stage = 'ingest' and reason = 'pdf/truncated'")
    assert len(broken) == 1 and "broken-000.pdf" in broken[0][0]
    web_pdfs = sql(run, "select count(*) from ingest where content_type = 'application/pdf' and url is not null")
    assert web_pdfs[0][0] >= 1


def test_export_token_counts_agree_with_the_tokens_view_and_the_files(demo_run):
    import numpy as np

    run, _ = demo_run
    manifest = json.loads((run.path / "export" / "manifest.json").read_text())
    by_domain = dict(sql(run, "select domain, sum(n_tokens)::BIGINT from tokens group by 1"))
    assert {d: info["tokens"] for d, info in manifest["domains"].items()} == by_domain
    assert abs(sum(info["weight"] for info in manifest["domains"].values()) - 1) < 1e-9
    sequence_length = manifest["batches"]["sequence_length"]
    assert manifest["batches"]["trained_tokens"] == sum(info["trained_tokens"] for info in manifest["domains"].values())
    for domain, info in manifest["domains"].items():
        tokens = np.memmap(run.path / "export" / "olmo-core" / f"{domain}.npy", dtype=np.uint16, mode="r")
        documents = np.memmap(run.path / "export" / "megatron-lm" / f"{domain}.bin", dtype=np.uint16, mode="r")
        assert len(documents) == info["tokens"] and len(tokens) == info["tokens"] // sequence_length * sequence_length
        assert np.array_equal(tokens, documents[: len(tokens)])  # the same documents, cut at the last whole sequence
        assert abs(info["share"] - info["weight"]) <= 1 / manifest["batches"]["sequences"]
    validation = sql(run, "select count(*), sum(n_tokens) from validation")[0]
    documents = sql(run, "select count(*) from tokenize")[0][0]
    assert 0 < validation[0] < 0.2 * documents
    stage = json.loads(run.manifest_path.read_text())["stages"]["tokenize"]
    assert stage["tokens"]["train"]["by_domain"] == {d: n for d, n in by_domain.items()}


def test_classifiers_meet_their_targets_and_label_the_corpus(demo_run):
    run, _ = demo_run
    models = run.stage_dir("classify") / "_models"
    quality = json.loads((models / "quality" / "quality.json").read_text())
    domain = json.loads((models / "domain" / "domain.json").read_text())
    assert quality["heldout"]["roc_auc"] >= DEMO_CONFIG["classify"]["quality"]["min_roc_auc"]  # trained without ground truth
    scores = demo_scores(run.path)
    assert scores["quality_roc_auc_vs_ground_truth"] >= 0.9  # scored against it
    assert domain["heldout"]["macro_f1"] >= 0.9  # on weak labels: declared sources and URL rules
    assert scores["domain_macro_f1_vs_ground_truth"] >= 0.85
    agreement = domain["heldout"]["agreement_by_origin"]
    assert set(agreement) == {"source", "url_rule"} and all(part["agreement"] >= 0.9 for part in agreement.values()), agreement
    assert (models / "domain" / "domain_confusion.png").stat().st_size > 1000
    agreement = sql(run, f"""select avg((c.domain = g.domain)::INT) from classify c
                            join read_parquet('{run.input_dir}/ground_truth.parquet') g on g.doc_key = c.url
                            where g.source = 'web'""")[0][0]
    assert agreement >= 0.9
    papers = sql(run, "select count(*), count(domain_score) from classify where domain = 'papers'")[0]
    assert papers[0] > 0 and papers[1] == 0  # the PDF source named their domain: kept, not classified


def test_planted_benchmark_items_are_dropped_and_reported(demo_run):
    run, _ = demo_run
    fates = dict(sql(run, f"""select g.contamination_kind is not null, avg(coalesce(r.reason = 'contamination/demo_bench', false)::INT)
                             from read_parquet('{run.input_dir}/ground_truth.parquet') g
                             join (select url, null as reason from classify union all
                                   select url, reason from removed where stage = 'classify') r on r.url = g.doc_key
                             group by 1"""))
    assert fates[True] >= 0.9 and fates[False] <= 0.01
    [(items, found, documents)] = sql(run, "select items, items_found, documents from contamination where benchmark = 'demo_bench'")
    bench_items = len((run.input_dir / "benchmarks" / "demo_bench.jsonl").read_text().splitlines())
    assert items == bench_items and 0 < found <= items and documents > 0
    details = sql(run, "select detail from removed where reason = 'contamination/demo_bench' limit 1")[0][0]
    assert "demo_bench#" in details
