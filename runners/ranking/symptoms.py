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
        ("the loss stuck near its start from the first ranking step",
         "the temperature is too low for near-uniform scores: the sigmoids saturate and pass no gradient",
         "a longer cross-entropy warmup, or a higher loss.temp_start"),
    ],
    "stagnant": [
        ("one class's AP never improves while the others learn",
         "the batches rarely hold a positive of that class: only the batch's rows are anchors (the queue "
         "only adds rows to rank against), so a class with a handful of training rows gets a gradient in a "
         "few steps out of a hundred",
         "a larger batch (train.batch_size), more rows of that class, or more steps"),
    ],
    "oscillating": [
        ("the loss swings with no downward trend",
         "the temperature is too low for the score scale: tiny score changes flip the sigmoids",
         "raise loss.temp_end, lengthen loss.temp_decay_steps, or lower the learning rate"),
    ],
}
