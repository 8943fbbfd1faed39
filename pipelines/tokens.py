"""The tokenize stage's tokenizer and its token accounting."""

from pathlib import Path

import duckdb

from curation.shards import list_kept_shards
from curation.tokenizer import TokenizerInfo, describe_tokenizer, from_tokenizer_json, gpt2_bpe, train_bpe
from pipelines.config import TokenizerSection
from pipelines.run import RunDir

TOKENIZE_READS = "rephrase"  # the last document stage before tokenization
QUALITY_BUCKET = "CASE WHEN quality_score IS NULL THEN NULL ELSE least(floor(quality_score * 5), 4) / 5 END"


def parquet_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def sample_texts(stage_dir: Path, n: int, seed: int) -> list[str]:
    """A seeded sample of a stage's documents (the same sample for the same shards and seed)."""
    files = list_kept_shards(stage_dir)
    if not files:
        raise ValueError(f"{stage_dir}: no documents to train a tokenizer on")
    query = f"SELECT text FROM read_parquet({parquet_list(files)}) ORDER BY hash(id || '{seed}') LIMIT {n}"
    return [row[0] for row in duckdb.connect().execute(query).fetchall()]


def prepare_tokenizer(section: TokenizerSection, out: Path, source: Path, seed: int) -> TokenizerInfo:
    """The run's tokenizer.json, made once: trained on a sample, copied from a file, or GPT-2's."""
    if out.exists():
        return describe_tokenizer(out, section.eos_token)
    if section.kind == "file":
        return from_tokenizer_json(Path(section.path), out, section.eos_token)
    if section.kind == "gpt2":
        return gpt2_bpe(out)
    return train_bpe(sample_texts(source, section.sample_docs, seed), section.vocab_size, out, section.eos_token)


def token_counts(config, run: RunDir) -> dict:
    """Tokens per split and domain, source and quality bucket, for the manifest."""
    files = list_kept_shards(run.stage_dir("tokenize"))
    if not files:
        return {"tokens": {}}
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT *, {QUALITY_BUCKET} AS quality_bucket FROM read_parquet({parquet_list(files)}, union_by_name=true)")
    counts: dict = {}
    for key in ("domain", "source", "quality_bucket"):
        rows = con.execute(f"SELECT split, {key}, sum(n_tokens) FROM t GROUP BY ALL ORDER BY ALL").fetchall()
        for split, value, tokens in rows:
            counts.setdefault(split, {}).setdefault(f"by_{key}", {})[str(value)] = int(tokens)
    return {"tokens": counts, "tokenizer": describe_tokenizer(run.tokenizer_path, config.tokenize.tokenizer.eos_token).to_dict()}
