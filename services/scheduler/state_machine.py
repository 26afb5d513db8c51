"""Which phase result the scheduler accepts in which phase of a step.

The phase services chain among themselves (mounter -> runner -> uploader), so results about
one attempt may arrive in any order: a result is accepted in every phase up to its own and
never moves a step backwards. A result for another attempt, or for a step past these phases,
is stale (a fenced runner, a redelivery) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from contracts import events as ev
from services.runtime.states import StepPhase

__all__ = ["ACCEPTS", "accepted_in"]

_P = StepPhase

#: result type -> phases of the step's current attempt in which it is applied
ACCEPTS: Mapping[type[ev.Event], frozenset[StepPhase]] = {
    ev.DataMounted: frozenset({_P.MOUNTING}),
    ev.DataMountFailed: frozenset({_P.MOUNTING}),
    ev.StepAttemptStarted: frozenset({_P.MOUNTING, _P.DISPATCHED}),
    ev.StepAttemptFinished: frozenset({_P.MOUNTING, _P.DISPATCHED, _P.RUNNING}),
    ev.ArtifactsUploaded: frozenset({_P.MOUNTING, _P.DISPATCHED, _P.RUNNING, _P.UPLOADING}),
    ev.ArtifactUploadFailed: frozenset({_P.MOUNTING, _P.DISPATCHED, _P.RUNNING, _P.UPLOADING}),
}


def accepted_in(event: ev.Event, phase: str) -> bool:
    """Whether ``event`` (a phase result) applies to a step now in ``phase``."""
    return phase in ACCEPTS[type(event)]
