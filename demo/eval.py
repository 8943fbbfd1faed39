"""Scores a demo run against the demo corpus's ground truth, with DuckDB.

Every number is a query joining ``input/ground_truth.parquet`` to the stage views
(``curate sql`` sees the same views): web pages join on URL. ``curate demo-eval``
prints them; the tests assert the thresholds.
"""

from pathlib import Path

from sklearn.metrics import f1_score, roc_auc_score

from pipelines.run import RunDir
from pipelines.sql import connect

# Where each web page ended: kept after dedup, or the stage and reason that removed it.
FATE = """
CREATE TEMP VIEW gt AS SELECT * FROM read_parquet('{ground_truth}') WHERE source = 'web';
CREATE TEMP VIEW fate AS
    SELECT url, 'kept' AS stage, NULL AS reason, lang FROM dedup
    UNION ALL SELECT url, stage, reason, lang FROM removed WHERE url IS NOT NULL;
CREATE TEMP VIEW judged AS
    SELECT gt.*, fate.stage AS fate_stage, fate.reason AS fate_reason, fate.lang AS predicted_lang
    FROM gt LEFT JOIN fate ON fate.url = gt.doc_key;
CREATE TEMP VIEW dedup_input AS
    SELECT judged.*, coalesce(dup_of, doc_key) AS dup_group FROM judged WHERE fate_stage IN ('kept', 'dedup');
"""

HEURISTIC_DROP = "fate_stage IN ('ingest', 'filter') AND fate_reason NOT LIKE 'license/%'"

METRICS = {
    # language ID on the French and Spanish pages that reached the language filter
    "lang_accuracy_multilingual": "SELECT avg((predicted_lang = lang)::INT) FROM judged WHERE lang <> 'en' AND predicted_lang IS NOT NULL",
    "lang_accuracy_all": "SELECT avg((predicted_lang = lang)::INT) FROM judged WHERE predicted_lang IS NOT NULL AND NOT is_spam AND NOT is_boilerplate AND domain <> 'code'",
    # spam and boilerplate removed before dedup (licence drops are policy, not quality)
    "spam_recall": f"SELECT avg(({HEURISTIC_DROP})::INT) FROM judged WHERE is_spam OR is_boilerplate",
    # good English pages the extraction or the heuristics lost
    "good_pages_lost": f"SELECT avg(({HEURISTIC_DROP})::INT) FROM judged WHERE NOT is_spam AND NOT is_boilerplate AND lang = 'en' AND license <> 'noai' AND dup_of IS NULL",
    # a removed duplicate is right when it and the document it names share a ground-truth group
    "near_dup_precision": """
        SELECT avg((r.dup_group = t.dup_group)::INT) FROM dedup_input r
        JOIN removed d ON d.stage = 'dedup' AND d.url = r.doc_key
        JOIN removed x ON x.stage = 'dedup' AND x.id = d.id
        JOIN (SELECT id, url FROM dedup UNION ALL SELECT id, url FROM removed WHERE stage = 'dedup') k ON k.id = x.dup_of
        JOIN dedup_input t ON t.doc_key = k.url
        WHERE r.fate_reason = 'dedup/near_duplicate'""",
    "near_dup_recall": """
        SELECT sum(removed) / sum(members - 1) FROM (
            SELECT dup_group, count(*) AS members, sum((fate_stage = 'dedup')::INT) AS removed
            FROM dedup_input WHERE dup_group IN (SELECT dup_of FROM judged WHERE dup_kind = 'near')
            GROUP BY 1 HAVING count(*) > 1)""",
    "exact_dup_recall": """
        SELECT sum(removed) / sum(members - 1) FROM (
            SELECT dup_group, count(*) AS members, sum((fate_stage = 'dedup')::INT) AS removed
            FROM dedup_input WHERE dup_group IN (SELECT dup_of FROM judged WHERE dup_kind = 'exact')
            GROUP BY 1 HAVING count(*) > 1)""",
    "unique_pages_lost_to_dedup": """
        SELECT avg((fate_stage = 'dedup')::INT) FROM dedup_input
        WHERE dup_group NOT IN (SELECT dup_of FROM judged WHERE dup_of IS NOT NULL) AND dup_of IS NULL""",
}


# The quality model learns reference-likeness from the wiki dump; on the crawl, the ground truth's
# encyclopedic pages (and their look-alikes) are what it should rank first.
QUALITY_JUDGED = """
    SELECT c.quality_score, g.kind IN ('wiki', 'hard_negative') AS reference_like
    FROM classify c JOIN read_parquet('{ground_truth}') g ON g.doc_key = c.url
    WHERE g.source = 'web' AND c.quality_score IS NOT NULL"""


# The domain classifier assigns the crawl's pages (source web, domain: classify) from weak labels;
# the ground truth says what each page is.
DOMAIN_JUDGED = """
    SELECT g.domain, c.domain FROM classify c JOIN read_parquet('{ground_truth}') g ON g.doc_key = c.url
    WHERE g.source = 'web' AND NOT g.is_spam AND NOT g.is_boilerplate"""


def demo_scores(run_dir: str | Path) -> dict[str, float]:
    run = RunDir(run_dir)
    ground_truth = run.input_dir / "ground_truth.parquet"
    con = connect(run.path)
    try:
        con.execute(FATE.format(ground_truth=ground_truth))
        scores = {name: float(con.execute(sql).fetchone()[0] or 0.0) for name, sql in METRICS.items()}
        if run.stage_dir("classify").is_dir():
            judged = con.execute(QUALITY_JUDGED.format(ground_truth=ground_truth)).fetchall()
            if judged and len({label for _, label in judged}) == 2:
                scores["quality_roc_auc_vs_ground_truth"] = float(roc_auc_score([label for _, label in judged], [score for score, _ in judged]))
            domains = con.execute(DOMAIN_JUDGED.format(ground_truth=ground_truth)).fetchall()
            if domains:
                truth, predicted = zip(*domains)
                scores["domain_macro_f1_vs_ground_truth"] = float(f1_score(truth, predicted, average="macro"))
        return scores
    finally:
        con.close()
