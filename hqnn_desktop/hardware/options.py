"""How a hardware run is executed: shots, transpiler effort, error suppression and mitigation.

Defaults follow IBM's advice for expectation values on current devices:
resilience level 1 (readout-error mitigation by measurement twirling, TREX),
dynamical decoupling on idle qubits (XpXm), gate twirling left to the
resilience level. They map one-to-one onto the client-side
``executor_estimator.Estimator``'s options of qiskit-ibm-runtime.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

DD_SEQUENCES = ("XX", "XpXm", "XY4")
#: The kinds of value an option may hold (its annotation's parts), how to test and say each.
_KINDS = {"int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
          "bool": (lambda v: isinstance(v, bool), "true or false"),
          "str": (lambda v: isinstance(v, str), "text"),
          "None": (lambda v: v is None, "unset (null)")}


@dataclass
class RunOptions:
    """Options of one hardware run (recorded with every job and in every report)."""

    shots: int = 4096
    batch_size: int = 64
    optimization_level: int = 2
    resilience_level: int = 1
    dynamical_decoupling: bool = True
    dd_sequence: str = "XpXm"
    twirl_gates: bool | None = None
    twirl_measure: bool | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):  # first the kinds (a record or report read from a file may hold anything)
            kinds = [_KINDS[k] for k in f.type.split(" | ")]
            if not any(test(getattr(self, f.name)) for test, _ in kinds):
                raise ValueError(f"The option {f.name} must be {' or '.join(words for _, words in kinds)}.")
        if self.shots < 1:
            raise ValueError("Shots must be at least 1.")
        if self.batch_size < 1:
            raise ValueError("The batch size must be at least 1.")
        if self.optimization_level not in (0, 1, 2, 3):
            raise ValueError("The optimisation level is 0, 1, 2 or 3.")
        if self.resilience_level not in (0, 1, 2):
            raise ValueError("The resilience level is 0, 1 or 2.")
        if self.dd_sequence not in DD_SEQUENCES:
            raise ValueError(f"Dynamical decoupling sequence is one of {', '.join(DD_SEQUENCES)}.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunOptions:
        """Options from a job record or report; unknown keys (from newer versions) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def apply(self, estimator) -> None:
        """Set these options on a client-side ``executor_estimator.Estimator``."""
        opts = estimator.options
        opts.default_shots = self.shots
        opts.resilience_level = self.resilience_level
        opts.dynamical_decoupling.enable = self.dynamical_decoupling
        opts.dynamical_decoupling.sequence_type = self.dd_sequence
        opts.twirling.enable_gates = self.twirl_gates
        opts.twirling.enable_measure = self.twirl_measure
        if self.seed is not None:
            opts.simulator.seed_simulator = self.seed
