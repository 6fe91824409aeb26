"""The loss library's failure-mode table: symptom -> likely cause -> remedy.

Keyed by the detector's verdict kinds, so the diagnosis quotes the rows for
the symptom a failing run shows. A plain data table: no imports, no logic.
"""

SYMPTOMS: dict[str, list[tuple[str, str, str]]] = {
    "diverged": [
        ("a spike or climb after the phase switch",
         "queue poisoning: the memory queue holds stale scores (queue_size / batch_size batches old, warmup-era "
         "ones right after the switch unless it is reset) that the model chases",
         "a queue of about one batch (loss.queue_size), emptied at the switch (loss.queue_reset: true)"),
    ],
    "flat": [
        ("the loss stuck near its start (1 - the positives' share of the pool) from the first step",
         "smooth-AP trained from scratch (no cross-entropy warmup or term) with plain SGD at a temperature far "
         "above the spread of the untrained, near-uniform scores: every sigmoid is in its linear range, so the "
         "loss barely depends on the ranking and its gradient shrinks like 1/T (grad norm 0.002 at T 2, 0.009 "
         "at T 0.5, 0.14 at T 0.1); SGD's steps follow the gradient's size (Adam's do not, and it learns)",
         "a temperature near the score spread (loss.temp_start / loss.temp_end, e.g. 0.5 -> 0.1), or Adam "
         "(train.optimizer)"),
    ],
    "stagnant": [
        ("one class's AP never improves while the others learn",
         "the batches rarely hold a positive of that class: only the batch's rows are anchors (the queue "
         "only adds rows to rank against), so a class with a handful of training rows gets a gradient in a "
         "few steps out of a hundred",
         "a larger batch (train.batch_size), more rows of that class, or more steps"),
    ],
    "oscillating": [
        ("the loss swings with no downward trend after the switch",
         "the temperature is far below the score scale, with a large learning rate and small batches: after the "
         "cross-entropy warmup a class's scores spread over several units (std 1.5-2.3) and at T 0.01 only about "
         "2% of the pairs lie within 5T of each other; the others saturate and pass nothing, the near-ties pass "
         "up to 1/(4T) each (gradient-norm spikes of 16-36, against 4.5-6.5 at T 0.5 -> 0.1); Adam's steps at "
         "lr 1e-2 move the scores by 11-22 T a step (0.8-1.1 T at lr 2e-3), across that narrow range and back, "
         "and a 128-row batch (about 5 positive rows) steers each step by a handful of anchors (oscillating in "
         "11 of 12 seeds; at batch 256, 1 of 3)",
         "a lower learning rate with good's batch (train.lr 2e-3, train.batch_size 256: stable in 11 of 12 "
         "seeds; lr 2e-3 alone, 5 of 6), or a temperature near the score spread (loss.temp_start / loss.temp_end "
         "0.5 -> 0.1); a larger batch alone is not enough (batch 256 at lr 1e-2: stable 1 of 3)"),
    ],
}
