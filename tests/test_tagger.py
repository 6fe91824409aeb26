"""runners.tagger with real torch, tiny sizes: corpus, BIO mask, CRF, a short train()."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from runners.tagger import PRIMARY, TaggerRecipe, train
from runners.tagger.config import TAGS, Data
from runners.tagger.data import TAG_ID, make_rows
from runners.tagger.model import CRF, FORBIDDEN, Tagger, bio_mask


def _orphan_roads(rows) -> int:
    """Rows whose road span starts with I-road (not preceded by B-road/I-road)."""
    n = 0
    for _, tags in rows:
        for i, t in enumerate(tags):
            if t == "I-road" and (i == 0 or tags[i - 1] not in ("B-road", "I-road")):
                n += 1
                break
    return n


def _bio_valid(tags: list[str]) -> bool:
    trans, start = bio_mask()
    ids = [TAG_ID[t] for t in tags]
    if start[ids[0]] != 0:
        return False
    return all(trans[a, b] == 0 for a, b in itertools.pairwise(ids))


def test_corpus_is_deterministic():
    for corpus in ("v1", "v2"):
        data = Data(corpus=corpus)
        first, second = make_rows(data, 200, "train"), make_rows(data, 200, "train")
        assert first == second
        assert len(first) == 200
        assert all(len(w) == len(t) > 0 for w, t in first)
    assert make_rows(Data(), 50, "train") != make_rows(Data(), 50, "val")
    assert make_rows(Data(corpus_seed=1), 50, "train") != make_rows(Data(corpus_seed=2), 50, "train")


def test_v2_has_orphan_roads_and_v1_none():
    v1 = make_rows(Data(corpus="v1"), 500, "train")
    v2 = make_rows(Data(corpus="v2"), 500, "train")
    assert _orphan_roads(v1) == 0
    orphans = _orphan_roads(v2)
    assert 20 <= orphans <= 90  # orphan_rows defaults to 10% of 500
    assert _orphan_roads(make_rows(Data(corpus="v2", orphan_rows=0.0), 500, "train")) == 0
    # every v1 gold sequence is allowed by the CRF's BIO mask; orphan v2 rows are not
    assert all(_bio_valid(t) for _, t in v1)
    assert sum(not _bio_valid(t) for _, t in v2) == orphans


def test_bio_mask():
    trans, start = bio_mask()
    o, b_road, i_road, i_unit, b_unit = (TAG_ID[t] for t in ("O", "B-road", "I-road", "I-unit", "B-unit"))
    assert trans.shape == (len(TAGS), len(TAGS)) and start.shape == (len(TAGS),)
    assert trans[o, i_road] == FORBIDDEN
    assert trans[b_road, i_road] == 0
    assert trans[i_road, i_road] == 0
    assert trans[b_unit, i_road] == FORBIDDEN
    assert trans[i_unit, i_road] == FORBIDDEN
    assert trans[i_road, o] == 0 and trans[i_road, b_unit] == 0 and trans[o, b_road] == 0
    assert start[i_road] == FORBIDDEN and start[b_road] == 0 and start[o] == 0
    assert all(start[TAG_ID[t]] == FORBIDDEN for t in TAGS if t.startswith("I-"))
    # forbidden transitions: into each of the 7 I- tags from 13 other tags
    assert int((trans == FORBIDDEN).sum()) == 7 * 13


def test_crf_mask_is_a_buffer_not_a_parameter():
    crf = CRF(len(TAGS))
    params = {n for n, _ in crf.named_parameters()}
    assert params == {"transitions", "start", "end"}
    assert {"trans_mask", "start_mask"} <= set(crf.state_dict())


@pytest.fixture(scope="module")
def tiny_crf():
    torch.manual_seed(0)
    crf = CRF(len(TAGS)).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_(0, 1)
    em = torch.randn(2, 3, len(TAGS), dtype=torch.float64)
    # sequence 0 has 3 tokens, sequence 1 has 2
    mask = torch.tensor([[True, True, True], [True, True, False]])
    return crf, em, mask


def _path_score(crf, em_row, path) -> torch.Tensor:
    trans, start = crf._scores()
    s = start[path[0]] + em_row[0, path[0]]
    for t in range(1, len(path)):
        s = s + trans[path[t - 1], path[t]] + em_row[t, path[t]]
    return s + crf.end[path[-1]]


def _brute(crf, em_row, length):
    paths = list(itertools.product(range(len(TAGS)), repeat=length))
    scores = torch.stack([_path_score(crf, em_row, p) for p in paths])
    return torch.logsumexp(scores, 0), paths[int(scores.argmax())]


def test_crf_nll_matches_brute_force(tiny_crf):
    crf, em, mask = tiny_crf
    gold = torch.tensor([[TAG_ID["B-road"], TAG_ID["I-road"], TAG_ID["B-locality"]],
                         [TAG_ID["O"], TAG_ID["B-unit"], 0]])
    with torch.no_grad():
        nll = crf.nll(em, gold, mask)
        assert nll.shape == (2,)
        assert bool((nll >= 0).all())
        for i, length in enumerate((3, 2)):
            log_z, _ = _brute(crf, em[i], length)
            want = log_z - _path_score(crf, em[i], gold[i, :length].tolist())
            assert nll[i].item() == pytest.approx(want.item(), rel=1e-9, abs=1e-9)


def test_crf_nll_of_orphan_gold_is_huge(tiny_crf):
    crf, em, mask = tiny_crf
    gold = torch.tensor([[TAG_ID["I-road"], TAG_ID["I-road"], TAG_ID["B-locality"]]])
    with torch.no_grad():
        nll = crf.nll(em[:1], gold, mask[:1])
    assert nll.item() > -FORBIDDEN / 2


def test_viterbi_matches_brute_force(tiny_crf):
    crf, em, mask = tiny_crf
    path = crf.decode(em, mask)
    assert path.shape == (2, 3)
    for i, length in enumerate((3, 2)):
        _, best = _brute(crf, em[i], length)
        assert path[i, :length].tolist() == list(best)


def test_tagger_forward_shapes():
    from runners.tagger.config import Model

    model = Tagger(Model(hidden_size=8, embed_dim=8, phrase_priors=True), vocab_size=50)
    tokens = torch.tensor([[2, 3, 4], [5, 6, 0]])
    mask = tokens != 0
    em = model(tokens, torch.zeros_like(tokens), mask)
    assert em.shape == (2, 3, len(TAGS))


def test_short_training_run(tmp_path):
    recipe = TaggerRecipe.model_validate({
        "runner": "tagger",
        "data": {"train_rows": 300, "val_rows": 50},
        "model": {"hidden_size": 16, "embed_dim": 16},
        "train": {"steps": 30, "warmup_steps": 5, "eval_every": 10, "checkpoint_every": 10},
    })
    out = tmp_path / "run"
    records = list(train(recipe, out_dir=out, device="cpu", threads=1))
    assert len(records) == 30
    assert [r["step"] for r in records] == list(range(1, 31))
    base = {"step", PRIMARY, "crf_nll", "total", "lr", "grad_norm"}
    assert PRIMARY == "train_ce"
    for r in records:
        assert base <= set(r)
        assert all(isinstance(r[k], (int, float)) and r[k] == r[k] for k in base)
        is_eval = r["step"] in (10, 20, 30)
        assert ("val_ce" in r) == is_eval
        assert ("val_macro_f1" in r) == is_eval
        if is_eval:
            assert 0.0 <= r["val_macro_f1"] <= 1.0
            assert sum(k.startswith("val_f1.") for k in r) == len(TAGS) - 1
    assert records[0]["lr"] == pytest.approx(3e-3 / 5)
    assert records[-1]["lr"] == pytest.approx(3e-3)
    # it learns something in 30 steps
    assert records[-1][PRIMARY] < records[0][PRIMARY]

    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 30
    assert [json.loads(line) for line in lines] == records

    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step_000010.pt", "step_000020.pt", "step_000030.pt"]
    state = torch.load(out / "checkpoints" / "step_000030.pt", weights_only=True)
    assert state["step"] == 30
    model = Tagger(recipe.model, recipe.data.tokenizer.vocab_size)
    model.load_state_dict(state["model"])
    assert torch.equal(state["model"]["crf.trans_mask"], bio_mask()[0])
