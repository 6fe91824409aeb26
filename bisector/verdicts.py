"""One vocabulary for what a trial ended as, and what that means to a search.

The values equal the strings stored in MLflow tags since the first release
(``verdict = stable``), so old campaigns stay readable: ``Kind("stable")``
parses a stored tag and ``Kind.STABLE == "stable"`` holds. The detector keeps
its own constants (it is also used alone by ``fingerprint``); this module
names them once more beside the campaign's own kinds (error, lost, invalid,
unresolved, degraded, cancelled) and says how a search reads each one: the failure being
explained, a pass, or nothing learned.
"""

from __future__ import annotations

from enum import Enum

from .detector import FAILURES as _DETECTOR_FAILURES


class Kind(str, Enum):
    """A trial's verdict."""

    RUNNING = "running"
    STABLE = "stable"
    DIVERGED = "diverged"
    NAN = "nan"
    FLAT = "flat"
    OSCILLATING = "oscillating"
    COLLAPSED = "collapsed"
    STAGNANT = "stagnant"
    DEGRADED = "degraded"
    """Stable, but its quality is far from the good endpoint's: never a fix."""
    ERROR = "error"
    """The training code raised (not the recipe failing)."""
    LOST = "lost"
    """The worker died more often than ``--retries`` allows."""
    INVALID = "invalid"
    """The toggled recipe fails validation: never launched."""
    UNRESOLVED = "unresolved"
    """The trial could not be tested (a script exit 125)."""
    CANCELLED = "cancelled"
    """Stopped while running because a sibling's result made it moot: no evidence, never reused, not a failure."""

    def __str__(self) -> str:
        return self.value

    def __hash__(self) -> int:  # hash like the string, so {"stable": ...}.get(Kind.STABLE) finds it
        return hash(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def of(cls, value: str | Kind | None) -> Kind:
        """A stored or reported verdict as a Kind (an unknown string reads as ``error``)."""
        if isinstance(value, Kind):
            return value
        try:
            return cls(value)
        except ValueError:
            return cls.ERROR


FAILURES = frozenset(Kind(v) for v in _DETECTOR_FAILURES)
"""The failures a campaign explains (the detector's)."""
UNTESTED = frozenset({Kind.ERROR, Kind.LOST, Kind.INVALID, Kind.UNRESOLVED, Kind.RUNNING, Kind.CANCELLED})
"""Trials that tell a search nothing about the knobs."""


class Outcome(str, Enum):
    """What a search reads from a verdict (Zeller's three test outcomes)."""

    FAIL = "fail"
    PASS = "pass"
    UNRESOLVED = "unresolved"

    def __str__(self) -> str:
        return self.value

    def __hash__(self) -> int:
        return hash(self.value)

    @property
    def other(self) -> Outcome:
        """The opposite outcome (unresolved has none)."""
        return {Outcome.FAIL: Outcome.PASS, Outcome.PASS: Outcome.FAIL}.get(self, Outcome.UNRESOLVED)


def outcome(verdict: str | Kind) -> Outcome:
    """A failure is FAIL, a healthy stable run is PASS, anything else (degraded included) teaches nothing."""
    k = Kind.of(verdict)
    if k in FAILURES:
        return Outcome.FAIL
    return Outcome.PASS if k is Kind.STABLE else Outcome.UNRESOLVED


class Result(str, Enum):
    """A campaign's answer, for ``--json`` (``result``) and the exit code."""

    CULPRITS = "culprits"
    NO_CULPRIT = "no_culprit"
    """Bad fails, good is stable, and no knob set the search tried explains it."""
    BAD_DOES_NOT_FAIL = "bad_does_not_fail"
    GOOD_NOT_STABLE = "good_not_stable"
    NOT_CONFIDENT = "not_confident"
    NOT_FINISHED = "not_finished"

    def __str__(self) -> str:
        return self.value

    def __hash__(self) -> int:
        return hash(self.value)
