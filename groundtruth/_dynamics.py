"""Formation times through training: when each planted component formed, read exactly off the
training snapshots, and what a dynamics method predicts."""

from __future__ import annotations

import dataclasses

import numpy as np

from planted.groundtruth._arrays import frozen
from planted.groundtruth._geometry import REPRESENTED_NORM

FORMATION_TOLERANCE = 0.1  # a feature has formed once its norm stays within 10% of its final norm


def formation_steps(dynamics, tolerance: float = FORMATION_TOLERANCE) -> np.ndarray:
    """(n_features,) int64: the step at which each feature of a toy model of superposition formed,
    the first snapshot from which its embedding length stays within ``tolerance`` of its final
    length to the end of training; -1 for features not represented at the end (final length at
    most ``REPRESENTED_NORM``). ``dynamics`` is a ``TrainingDynamics``."""
    norms = dynamics.norms
    final = norms[-1]
    settled = np.abs(norms - final) <= tolerance * final
    staying = np.flip(np.cumprod(np.flip(settled, axis=0), axis=0), axis=0).astype(bool)
    first = np.argmax(staying, axis=0)
    return np.where(final > REPRESENTED_NORM, dynamics.steps[first], -1).astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class Formation:
    """A dynamics method's prediction from a training record.

    Attributes
    ----------
    steps : (n_features,) int64 or None
        The step at which each feature formed; -1: never. None when the method dates no feature.
    events : (k,) int64 or None
        Steps at which the method sees something form (a change point of the loss, say); None:
        the distinct ``steps``. Step 0 (the initialisation) is never an event.
    """

    steps: np.ndarray | None = None
    events: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.steps is None and self.events is None:
            raise ValueError("a Formation needs steps, events or both")
        for name in ("steps", "events"):
            value = getattr(self, name)
            if value is None:
                continue
            array = np.asarray(value)
            if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or
                                       (np.issubdtype(array.dtype, np.floating) and np.isfinite(array).all()
                                        and (array == np.round(array)).all())):
                raise ValueError(f"Formation.{name} must be a 1-D array of integer steps, got {array.dtype} {array.shape}")
            array = array.astype(np.int64)
            if (array < -1).any() or (name == "events" and (array < 0).any()):
                raise ValueError(f"Formation.{name} must be steps >= 0" + (" (or -1: never)" if name == "steps" else ""))
            object.__setattr__(self, name, frozen(np.unique(array) if name == "events" else array))

    @property
    def event_steps(self) -> np.ndarray:
        """The events after the initialisation (step 0 is no event): as given, or the distinct
        steps at which a feature formed."""
        events = self.events if self.events is not None else np.unique(self.steps)
        return events[events > 0]
