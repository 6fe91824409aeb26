"""Embedding -> BiLSTM or small transformer -> emissions -> CRF.

The CRF has learned transitions plus a *frozen* BIO mask: transitions the BIO
scheme forbids (``O -> I-x``, ``B-x -> I-y``, ``I-x -> I-y`` for x != y, and
starting on ``I-x``) get -1e4 in both the gold-path score and the partition
function, and the mask is a buffer, not a parameter. A gold sequence that
breaks the scheme therefore keeps a gradient that never vanishes: the
mechanism behind the reference failure.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TAGS, Model
from .data import NUM_PRIORS

FORBIDDEN = -1e4


def bio_mask(tags: tuple[str, ...] = TAGS) -> tuple[torch.Tensor, torch.Tensor]:
    """(transition penalty [from, to], start penalty [to]): 0 allowed, -1e4 forbidden."""
    n = len(tags)
    trans = torch.zeros(n, n)
    start = torch.zeros(n)
    for j, to in enumerate(tags):
        if to.startswith("I-"):
            start[j] = FORBIDDEN
            for i, frm in enumerate(tags):
                if frm[2:] != to[2:]:
                    trans[i, j] = FORBIDDEN
    return trans, start


class CRF(nn.Module):
    def __init__(self, num_tags: int):
        super().__init__()
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        trans_mask, start_mask = bio_mask()
        self.register_buffer("trans_mask", trans_mask)
        self.register_buffer("start_mask", start_mask)

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transitions + self.trans_mask, self.start + self.start_mask

    def nll(self, em: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per sequence, shape [B]."""
        trans, start = self._scores()
        b, length, _ = em.shape
        m = mask.to(em.dtype)
        ar = torch.arange(b, device=em.device)
        # Gold path score.
        gold = start[tags[:, 0]] + em[ar, 0, tags[:, 0]]
        for t in range(1, length):
            step = trans[tags[:, t - 1], tags[:, t]] + em[ar, t, tags[:, t]]
            gold = gold + step * m[:, t]
        last = tags[ar, mask.sum(1) - 1]
        gold = gold + self.end[last]
        # Partition function.
        alpha = start + em[:, 0]
        for t in range(1, length):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + em[:, t]
            alpha = torch.where(mask[:, t : t + 1], nxt, alpha)
        log_z = torch.logsumexp(alpha + self.end, dim=1)
        return log_z - gold

    @torch.no_grad()
    def decode(self, em: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Viterbi path [B, L] (positions past each length hold garbage)."""
        trans, start = self._scores()
        b, length, n = em.shape
        score = start + em[:, 0]
        back = []
        for t in range(1, length):
            best, idx = (score.unsqueeze(2) + trans.unsqueeze(0)).max(dim=1)
            nxt = best + em[:, t]
            keep = mask[:, t : t + 1]
            score = torch.where(keep, nxt, score)
            back.append(torch.where(keep, idx, torch.arange(n, device=em.device).expand(b, n)))
        score = score + self.end
        path = [score.argmax(1)]
        for idx in reversed(back):
            path.append(idx.gather(1, path[-1].unsqueeze(1)).squeeze(1))
        return torch.stack(path[::-1], dim=1)


class Tagger(nn.Module):
    def __init__(self, cfg: Model, vocab_size: int):
        super().__init__()
        n = len(TAGS)
        self.embedding = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=0)
        self.priors = nn.Embedding(NUM_PRIORS, cfg.embed_dim) if cfg.phrase_priors else None
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.encoder == "lstm":
            self.encoder = nn.LSTM(
                cfg.embed_dim, cfg.hidden_size, num_layers=cfg.layers,
                batch_first=True, bidirectional=True,
                dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            )
            width = 2 * cfg.hidden_size
        else:
            self.proj = nn.Linear(cfg.embed_dim, cfg.hidden_size)
            self.position = nn.Embedding(64, cfg.hidden_size)
            layer = nn.TransformerEncoderLayer(
                cfg.hidden_size, nhead=4, dim_feedforward=2 * cfg.hidden_size,
                dropout=cfg.dropout, batch_first=True,
            )
            self.encoder = nn.TransformerEncoder(layer, num_layers=cfg.layers, enable_nested_tensor=False)
            width = cfg.hidden_size
        self.kind = cfg.encoder
        self.emission = nn.Linear(width, n)
        self.crf = CRF(n)

    def forward(self, tokens: torch.Tensor, priors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Emission scores [B, L, T]."""
        x = self.embedding(tokens)
        if self.priors is not None:
            x = x + self.priors(priors)
        x = self.dropout(x)
        if self.kind == "lstm":
            lengths = mask.sum(1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.encoder(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])
        else:
            pos = torch.arange(tokens.shape[1], device=tokens.device)
            x = self.encoder(self.proj(x) + self.position(pos), src_key_padding_mask=~mask)
        return self.emission(self.dropout(x))
