"""The anneal (mid-training) phase: mixtures over (domain, quality bucket) units, from a base proxy.

A *unit* is the training documents of one domain whose ``quality_score`` falls in one bucket of
configurable edges: with edges ``[0.4, 0.8]`` the buckets are ``q0`` (score < 0.4), ``q1``
(0.4 <= score < 0.8) and ``q2`` (score >= 0.8); documents without a score form ``unscored``.
Units are named ``<domain>/<bucket>`` (``wiki/q2``, ``web/unscored``).

Each unit's token stream is cut out of the tokenize stage's token files document by document: in
``<tokenize>/<domain>/<rank>.parquet`` the rows of the training split are, in order, the documents
of ``<tokenize>/_tokens/train/<domain>/<rank>.ds`` (``DomainTokenizer`` writes both in the order
it reads). That correspondence is checked against every row's ``n_tokens``; any difference fails.

An anneal proxy continues a *base* proxy (trained on the pre-training mix) from its parameters and
AdamW state, on a unit mixture, with the learning rate falling linearly to 0. Anneal proxies run
as a `mixes.swarm.Swarm` whose store key holds the base model's id, so they are kept and
rescored like the pre-training proxies and never mixed with the proxies of another base.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from curation.atomic import atomic_path
from curation.shards import safe_segment, shard_rank
from curation.tokenize import TRAIN
from mixes.export.token_files import TokenFile, datatrove_token_dtype
from mixes.proxy_model import ProxyConfig, ProxyState, train_proxy_state
from mixes.swarm import ProxySpec, TrainedProxy, trained_proxy

UNSCORED = "unscored"
SHARD_COLUMNS = ["domain", "split", "n_tokens", "quality_score"]
UNKNOWN_DOMAIN = "unknown"  # what ShardWriter and DomainTokenizer file a document without a domain under


# -- units -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityBuckets:
    """Buckets over `quality_score` between strictly increasing `edges` (lower edge inclusive)."""

    edges: tuple[float, ...]

    def __post_init__(self):
        edges = np.asarray(self.edges, dtype=np.float64)
        if edges.ndim != 1 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise ValueError(f"quality edges must be finite and strictly increasing, got {list(self.edges)}")

    @property
    def names(self) -> list[str]:
        """Bucket names by code: q0 .. q<len(edges)>, then `unscored`."""
        return [f"q{i}" for i in range(len(self.edges) + 1)] + [UNSCORED]

    def codes(self, scores: Iterable[float | None]) -> np.ndarray:
        """Each score's bucket code (an index into `names`); a missing or NaN score is `unscored`."""
        values = np.array([np.nan if s is None else s for s in scores], dtype=np.float64)
        codes = np.searchsorted(np.asarray(self.edges, dtype=np.float64), values, side="right")
        codes[np.isnan(values)] = len(self.edges) + 1
        return codes

    def score_range(self, bucket: str) -> tuple[float | None, float | None]:
        """[low, high) of a bucket's scores; None for an open end (and both for `unscored`)."""
        if bucket == UNSCORED:
            return None, None
        index = self.names.index(bucket)
        low = self.edges[index - 1] if index > 0 else None
        high = self.edges[index] if index < len(self.edges) else None
        return low, high


def unit_name(domain: str, bucket: str) -> str:
    return f"{domain}/{bucket}"


@dataclass(frozen=True)
class Unit:
    name: str
    domain: str
    bucket: str
    tokens: int
    documents: int


@dataclass(frozen=True)
class UnitStreams:
    """The units (in domain, then bucket order), each one's training documents back to back, and
    the documents' lengths (each ends with EOS)."""

    units: dict[str, Unit]
    streams: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]

    @property
    def tokens(self) -> dict[str, int]:
        return {name: unit.tokens for name, unit in self.units.items()}

    def without_smaller_than(self, min_tokens: int) -> tuple[UnitStreams, dict[str, int]]:
        """These units less those with fewer than `min_tokens` tokens, and the tokens of those left out."""
        kept = [name for name, unit in self.units.items() if unit.tokens >= min_tokens]
        dropped = {name: unit.tokens for name, unit in self.units.items() if unit.tokens < min_tokens}
        subset = UnitStreams(
            {n: self.units[n] for n in kept}, {n: self.streams[n] for n in kept}, {n: self.lengths[n] for n in kept}
        )
        return subset, dropped


def shard_training_rows(path: Path) -> pd.DataFrame:
    """The training-split rows of a tokenize shard, in file order: domain, n_tokens, quality_score."""
    table = pq.read_table(path, columns=SHARD_COLUMNS).to_pandas()
    rows = table.loc[table["split"] == TRAIN].reset_index(drop=True)
    rows["domain"] = rows["domain"].fillna(UNKNOWN_DOMAIN)
    return rows


def check_alignment(token_file: TokenFile, rows: pd.DataFrame, shard: Path) -> None:
    """The token file's documents must be the shard's training rows: same count, same lengths."""
    lengths = token_file.document_lengths
    counted = rows["n_tokens"].fillna(-1).to_numpy(dtype=np.int64)
    if len(lengths) != len(counted):
        raise ValueError(
            f"{token_file.path} holds {len(lengths)} documents but {shard} has {len(counted)} training rows: "
            "the tokenize stage's token files and shards disagree (rerun it with --restart)"
        )
    wrong = np.flatnonzero(lengths != counted)
    if wrong.size:
        i = int(wrong[0])
        raise ValueError(
            f"{token_file.path}: document {i} has {int(lengths[i])} tokens but row {i} of the training rows "
            f"of {shard} says n_tokens {int(counted[i])} ({wrong.size} such document(s)): the token file "
            "and the shard are not in the same order or not from the same run (rerun tokenize with --restart)"
        )


def _rank_files(folder: Path, suffix: str) -> dict[int, Path]:
    if not folder.is_dir():
        return {}
    return {shard_rank(p): p for p in folder.glob(f"*{suffix}") if p.is_file() and not p.name.startswith(".")}


def build_unit_streams(
    tokenize_dir: Path, token_root: Path, domains: Sequence[str], buckets: QualityBuckets, vocab_size: int
) -> UnitStreams:
    """Every unit's token stream, cut per document from the domains' training token files
    (the tokenize stage's shards in ``tokenize_dir``, its token files under ``token_root/<split>``).

    Shards and token files are found by the domain's path segment, so domains whose names map to
    one segment are read together, with each row's own domain deciding its unit.
    """
    tokenize_dir, train_root = Path(tokenize_dir), Path(token_root) / TRAIN
    segments = list(dict.fromkeys(safe_segment(domain) for domain in domains))
    parts: dict[tuple[str, int], list[np.ndarray]] = {}
    documents: dict[tuple[str, int], list[np.ndarray]] = {}
    for segment in segments:
        shards = _rank_files(tokenize_dir / segment, ".parquet")
        token_files = _rank_files(train_root / segment, ".ds")
        orphans = sorted(set(token_files) - set(shards))
        if orphans:
            raise ValueError(
                f"{[str(token_files[r]) for r in orphans]}: token files without a shard of the same rank "
                f"in {tokenize_dir / segment}: the tokenize stage is incomplete or stale (rerun it with --restart)"
            )
        for rank in sorted(shards):
            rows = shard_training_rows(shards[rank])
            if rank not in token_files:
                if len(rows):
                    raise ValueError(
                        f"{shards[rank]} has {len(rows)} training rows but there is no token file "
                        f"{train_root / segment / f'{rank:05d}.ds'}"
                    )
                continue
            token_file = TokenFile(token_files[rank], vocab_size)
            check_alignment(token_file, rows, shards[rank])
            _add_documents(parts, documents, token_file, rows, buckets)
    return _assemble(parts, documents, domains, buckets)


def _add_documents(parts, documents, token_file: TokenFile, rows: pd.DataFrame, buckets: QualityBuckets) -> None:
    """Split one token file's tokens by the unit of the document they belong to."""
    if not len(rows):
        return
    keys = list(zip(rows["domain"], buckets.codes(rows["quality_score"]).tolist()))
    ids = {key: index for index, key in enumerate(dict.fromkeys(keys))}
    doc_unit = np.array([ids[key] for key in keys], dtype=np.int64)
    token_unit = np.repeat(doc_unit, token_file.document_lengths)
    tokens = np.asarray(token_file.tokens)
    for key, index in ids.items():
        parts.setdefault(key, []).append(tokens[token_unit == index])
        documents.setdefault(key, []).append(token_file.document_lengths[doc_unit == index])


def _assemble(parts, documents, domains: Sequence[str], buckets: QualityBuckets) -> UnitStreams:
    order = {domain: i for i, domain in enumerate(domains)}
    units, streams, lengths = {}, {}, {}
    for domain, code in sorted(parts, key=lambda key: (order.get(key[0], len(order)), key[0], key[1])):
        stream = np.concatenate(parts[(domain, code)])
        if not len(stream):
            continue
        bucket = buckets.names[code]
        name = unit_name(domain, bucket)
        lengths[name] = np.concatenate(documents[(domain, code)]).astype(np.int64)
        units[name] = Unit(name, domain, bucket, len(stream), len(lengths[name]))
        streams[name] = stream
    return UnitStreams(units, streams, lengths)


def write_unit_token_files(units: UnitStreams, names: Iterable[str], out_dir: Path, vocab_size: int) -> dict[str, Path]:
    """Each named unit as one datatrove token file, ``<out_dir>/<folder>/00000.ds`` and ``.ds.index``.

    The format `DocumentTokenizer` writes (see `mixes.export.token_files`), so the export reads a
    unit's folder as it reads a domain's. The folder is the unit's name with '/' as '-' (as the
    export names files), so no unit's folder lies inside another's. Files appear under their
    final names only when complete.
    """
    folders = {}
    dtype = datatrove_token_dtype(vocab_size)
    for name in names:
        folder = Path(out_dir) / safe_segment(name.replace("/", "-"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "00000.ds"
        index = path.with_name(path.name + ".index")
        for target, data in ((path, units.streams[name].astype(dtype)), (index, np.cumsum(units.lengths[name]).astype("<u8"))):
            with atomic_path(target) as temporary:
                data.tofile(temporary)
        folders[name] = folder
    return folders


# -- the base model -------------------------------------------------------------


def save_state(state: ProxyState, path: Path, meta: Mapping) -> None:
    """The state and what it was trained from, written atomically (temp file + rename)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        torch.save({"meta": dict(meta), "state": state.to_dict()}, temporary)


def load_state(path: Path, base_id: str) -> tuple[ProxyState, dict] | None:
    """The saved state and its meta if it was trained for `base_id`; None if absent or another base."""
    path = Path(path)
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("meta", {}).get("base_id") != base_id:
        return None
    return ProxyState.from_dict(saved["state"]), saved["meta"]


# -- anneal proxies -----------------------------------------------------------------------------------


def run_anneal_spec(
    spec: ProxySpec,
    unit_streams: Mapping[str, np.ndarray],
    targets: Mapping,
    token_budget: int,
    config: ProxyConfig,
    base: ProxyState,
    learning_rate: float | None,
    device: str,
) -> TrainedProxy:
    """Task body: continue the base proxy on the spec's unit mixture (linear decay to 0), scored on every target."""
    return trained_proxy(*train_proxy_state(
        unit_streams, spec.weights, targets, token_budget, config, spec.seed, device,
        initial_state=base, schedule="linear_decay", learning_rate=learning_rate,
    ))
