"""A deterministic synthetic address corpus, its tokenizer, and batching.

Why synthetic: the failure this product exists for came from a corpus change
(LLM-written rows, some with BIO-invalid gold tags). Generating both corpus
versions from a fixed seed makes that change a recipe knob and every run
reproducible without downloads.

v1 rows are template addresses with consistent BIO tags. v2 keeps v1's rows
and replaces a share of them with LLM-style rows: transliterated or rare
tokens, and (``orphan_rows``) roads whose first token is tagged ``I-road``,
a gold sequence the CRF's frozen BIO mask forbids.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from dataclasses import dataclass

import torch

from .config import TAGS, Data, Tokenizer

ROAD_NAMES = (
    "main oak pine maple cedar elm park hill lake river church mill station high "
    "king queen victoria george albert north south east west bridge market garden "
    "spring forest meadow valley ridge sunset harbour beach orchard willow ash birch "
    "chestnut rose lily jasper granite quarry canal abbey castle manor"
).split()
ROAD_SUFFIXES = "street road avenue lane drive court place way crescent terrace boulevard close".split()
LOCALITIES = (
    "springfield riverside fairview greenville kingston ashford bristol newport "
    "clifton oakridge milton franklin clinton salem georgetown madison chester "
    "lancaster dover hudson windsor marion auburn dayton lexington bedford "
    "brighton camden elmwood hamilton"
).split()
LOCALITY_SECOND = "heights park hills falls junction".split()
REGIONS = "nsw vic qld wa sa tas act nt ca ny tx wa fl il oh pa ga nc mi nj".split()
UNIT_WORDS = "apt unit suite flat".split()
VENUES = "acme globex initech umbrella stark wayne hooli vandelay cafe bakery clinic library school".split()
VENUE_SECOND = "tower centre plaza house hall building".split()
TRANSLIT = (
    "ulitsa prospekt doroga shosse pereulok naberezhnaya strasse gasse weg platz "
    "rua avenida calle carrera jalan lorong chome dori ogil marg nagar"
).split()
PRIORS = {**{w: 2 for w in ROAD_SUFFIXES}, **{w: 3 for w in REGIONS}, **{w: 4 for w in UNIT_WORDS}}
"""Gazetteer feature per word for ``model.phrase_priors``: 1 digits, 2 road
suffix, 3 region code, 4 unit word, 0 anything else."""
NUM_PRIORS = 5

TAG_ID = {t: i for i, t in enumerate(TAGS)}


def _rare_word(rng: random.Random) -> str:
    syll = ("ka", "zu", "mi", "tor", "vel", "sha", "qu", "ix", "yo", "bre", "dak", "ni")
    return "".join(rng.choice(syll) for _ in range(rng.randint(2, 4)))


def _spans(rng: random.Random) -> list[tuple[str, list[str]]]:
    """One address as (field, tokens) spans in a plausible order."""
    road = [rng.choice(ROAD_NAMES), rng.choice(ROAD_SUFFIXES)]
    if rng.random() < 0.3:
        road.insert(0, rng.choice(ROAD_NAMES))
    loc = [rng.choice(LOCALITIES)]
    if rng.random() < 0.25:
        loc.append(rng.choice(LOCALITY_SECOND))
    spans: list[tuple[str, list[str]]] = []
    if rng.random() < 0.2:
        spans.append(("venue", [rng.choice(VENUES), rng.choice(VENUE_SECOND)]))
    if rng.random() < 0.25:
        spans.append(("unit", [rng.choice(UNIT_WORDS), str(rng.randint(1, 40))]))
    spans.append(("house_number", [str(rng.randint(1, 999))]))
    spans.append(("road", road))
    spans.append(("locality", loc))
    spans.append(("region", [rng.choice(REGIONS)]))
    spans.append(("postcode", [str(rng.randint(1000, 9999))]))
    return spans


def _llm_style(spans: list[tuple[str, list[str]]], rng: random.Random) -> list[tuple[str, list[str]]]:
    """What an LLM rewrite does to a row: transliterated suffixes, rare names."""
    out = []
    for field, toks in spans:
        toks = list(toks)
        if field == "road":
            if rng.random() < 0.6:
                toks[-1] = rng.choice(TRANSLIT)
            if rng.random() < 0.5:
                toks[0] = _rare_word(rng)
        elif field == "locality" and rng.random() < 0.5:
            toks = [_rare_word(rng)]
        out.append((field, toks))
    return out


def make_rows(data: Data, n: int, split: str) -> list[tuple[list[str], list[str]]]:
    """``n`` rows of (words, BIO tags), the same for the same corpus and split.

    v2 draws its choices from a second generator, so it is v1 with some rows
    rewritten, not a different corpus.
    """
    rng = random.Random(f"{data.corpus_seed}/{split}")
    mix = random.Random(f"{data.corpus_seed}/{split}/v2")
    rows = []
    for _ in range(n):
        spans = _spans(rng)
        llm = orphan = False
        if data.corpus == "v2":
            llm, orphan = mix.random() < data.llm_rows, mix.random() < data.orphan_rows
            if llm:
                spans = _llm_style(spans, mix)
        words, tags = [], []
        for field, toks in spans:
            for j, w in enumerate(toks):
                words.append(w)
                begin = j == 0 and not (orphan and field == "road")
                tags.append(f"{'B' if begin else 'I'}-{field}")
        rows.append((words, tags))
    return rows


class Vocab:
    """Word or hashed-word ids; 0 is padding, 1 is unknown (word scheme)."""

    def __init__(self, cfg: Tokenizer, train_rows: list[tuple[list[str], list[str]]]):
        self.cfg = cfg
        self.ids: dict[str, int] = {}
        if cfg.scheme == "word":
            counts = Counter(self._norm(w) for words, _ in train_rows for w in words)
            for i, (w, _) in enumerate(counts.most_common(cfg.vocab_size - 2)):
                self.ids[w] = i + 2

    def _norm(self, w: str) -> str:
        return w.lower() if self.cfg.lowercase else w

    def __call__(self, w: str) -> int:
        w = self._norm(w)
        if self.cfg.scheme == "hash":
            return 1 + zlib.crc32(w.encode()) % (self.cfg.vocab_size - 1)
        return self.ids.get(w, 1)


def prior(w: str) -> int:
    return 1 if w.isdigit() else PRIORS.get(w.lower(), 0)


@dataclass
class Encoded:
    """Padded tensors for a whole split; ``mask`` marks real tokens."""

    tokens: torch.Tensor
    priors: torch.Tensor
    tags: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def batch(self, idx: torch.Tensor) -> Encoded:
        length = int(self.mask[idx].sum(1).max())
        return Encoded(*(t[idx, :length] for t in (self.tokens, self.priors, self.tags, self.mask)))

    def to(self, device: torch.device | str) -> Encoded:
        return Encoded(*(t.to(device) for t in (self.tokens, self.priors, self.tags, self.mask)))


def encode(rows: list[tuple[list[str], list[str]]], vocab: Vocab) -> Encoded:
    length = max(len(words) for words, _ in rows)
    shape = (len(rows), length)
    tokens, priors, tags = (torch.zeros(shape, dtype=torch.long) for _ in range(3))
    mask = torch.zeros(shape, dtype=torch.bool)
    for i, (words, tg) in enumerate(rows):
        n = len(words)
        tokens[i, :n] = torch.tensor([vocab(w) for w in words])
        priors[i, :n] = torch.tensor([prior(w) for w in words])
        tags[i, :n] = torch.tensor([TAG_ID[t] for t in tg])
        mask[i, :n] = True
    return Encoded(tokens, priors, tags, mask)


def load(data: Data) -> tuple[Encoded, Encoded, Vocab]:
    """Train and validation splits; validation is always clean (v1) rows so
    that every recipe is scored against the same notion of a correct parse."""
    train_rows = make_rows(data, data.train_rows, "train")
    val_rows = make_rows(data.model_copy(update={"corpus": "v1"}), data.val_rows, "val")
    vocab = Vocab(data.tokenizer, train_rows)
    return encode(train_rows, vocab), encode(val_rows, vocab), vocab
