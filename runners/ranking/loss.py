"""The two objectives and the wrapper that switches between them.

``smooth_ap``: per positive class c, each positive row i of the batch is
ranked by its score s_c among the pool (the batch plus the memory queue):
its smooth rank is ``1 + sum_j sigmoid((s_j - s_i) / T)``, and its smooth
precision the rank among positives over the rank among all. The loss is
1 - the mean over classes (with a positive in the batch) of the mean
precision. The queue holds past scores and labels, detached: it gives rare
classes positives and negatives to compare with, and it is only as good as
how recent its scores are.

``PhaseSwitch`` is the wrapper a loss library ships: cross-entropy for
``warmup_steps``, then smooth-AP (plus ``ce_weight`` cross-entropy) with a
temperature decaying from ``temp_start`` to ``temp_end``; it owns the queue
and empties it at the switch when ``queue_reset`` says so.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import Loss


def smooth_ap(scores: torch.Tensor, labels: torch.Tensor, q_scores: torch.Tensor, q_labels: torch.Tensor,
              temp: float) -> tuple[torch.Tensor, dict[int, float]]:
    """1 - mean smooth AP over positive classes present in the batch, and each class's AP."""
    pool_s = torch.cat([scores, q_scores])
    pool_y = torch.cat([labels, q_labels])
    aps, per = [], {}
    for c in range(1, scores.shape[1]):
        anchors = (labels == c).nonzero(as_tuple=True)[0]
        if len(anchors) == 0:
            continue
        s = pool_s[:, c]
        diff = (s.unsqueeze(0) - s[anchors].unsqueeze(1)) / temp  # anchors x pool
        sig = torch.sigmoid(diff)
        sig = sig.masked_fill(F.one_hot(anchors, len(pool_y)).bool(), 0.0)  # not compared with itself
        pos = (pool_y == c).float()
        rank_all = 1.0 + sig.sum(1)
        rank_pos = 1.0 + (sig * pos).sum(1)
        ap = (rank_pos / rank_all).mean()
        aps.append(ap)
        per[c] = float(ap.detach())
    if not aps:
        return scores.sum() * 0.0, per
    return 1.0 - torch.stack(aps).mean(), per


class PhaseSwitch:
    """Cross-entropy warmup, then smooth-AP with a memory queue; the queue is emptied at the switch."""

    def __init__(self, spec: Loss, classes: int, device: torch.device):
        self.spec = spec
        self.q_scores = torch.zeros(0, classes + 1, device=device)
        self.q_labels = torch.zeros(0, dtype=torch.long, device=device)

    @property
    def switch_step(self) -> int:
        return self.spec.warmup_steps + 1

    def ranking(self, step: int) -> bool:
        return step >= self.switch_step

    def temperature(self, step: int) -> float:
        s = self.spec
        t = max(step - self.switch_step, 0)
        return s.temp_end + (s.temp_start - s.temp_end) * math.exp(-t / s.temp_decay_steps)

    def terms(self, scores: torch.Tensor, labels: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """The unweighted terms at ``step``: ``ce`` always, ``rank`` in the ranking phase."""
        out = {"ce": F.cross_entropy(scores, labels)}
        if self.ranking(step):
            if step == self.switch_step and self.spec.queue_reset:
                self.q_scores, self.q_labels = self.q_scores[:0], self.q_labels[:0]
            out["rank"] = smooth_ap(scores, labels, self.q_scores, self.q_labels, self.temperature(step))[0]
        return out

    def weights(self, step: int) -> dict[str, float]:
        return {"ce": self.spec.ce_weight, "rank": 1.0} if self.ranking(step) else {"ce": 1.0}

    def push(self, scores: torch.Tensor, labels: torch.Tensor, step: int) -> None:
        """Enqueue this batch's scores (FIFO, newest last)."""
        size = self.spec.queue_size
        if size == 0 or (not self.ranking(step) and not self.spec.queue_during_warmup):
            return
        self.q_scores = torch.cat([self.q_scores, scores.detach()])[-size:]
        self.q_labels = torch.cat([self.q_labels, labels])[-size:]

    def state(self) -> dict[str, torch.Tensor]:
        return {"q_scores": self.q_scores, "q_labels": self.q_labels}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        self.q_scores, self.q_labels = state["q_scores"], state["q_labels"]
