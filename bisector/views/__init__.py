"""Rendering in one place: every way a campaign is shown to people.

``terminal`` (progress lines and the ladder table, rich), ``markdown``
(``ladder.md``, ``probe.md`` and the table rule every note follows), ``html``
(``ladder.html``), ``png`` (``curves.png``) and ``mlflow_ui`` (run names,
colours and notes in the MLflow UI). They read a ``Ladder`` and return text or
bytes; none records anything (the tracker and ``presenter`` write them).
"""
