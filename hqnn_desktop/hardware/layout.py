"""Where the circuit goes on a device: the best calibrated chain of n qubits, routing kept inside it.

The VQC is a ring of n qubits; heavy-hex and square lattices have no n-cycle
for n = 8, so the preset transpiler spreads the ring over a 12-qubit cycle and
swaps through 4 idle qubits. Restricting layout and routing to the chain of n
connected qubits with the lowest calibrated error (two-qubit gate errors along
the chain plus readout errors, as mapomatic scores layouts) costs a few more
two-qubit gates but on the bundled 8-qubit packs gives a lower total error
estimate on fake_brisbane, fake_torino and fake_guadalupe (0.35 against 0.46
on Brisbane, summed -log(1 - error) of every gate and readout), and keeps the
circuit on exactly n qubits, which is what makes calibrated emulation fast
(density matrix of 8 qubits instead of 12: :mod:`.emulation`).
"""

from __future__ import annotations

import math

from qiskit.transpiler import Target

#: Stop the chain search after this many complete chains (square lattices have many).
MAX_CHAINS = 200_000


def _cost(error: float | None) -> float:
    return -math.log(1.0 - min(float(error or 0.0), 0.999))


def edge_costs(target: Target) -> dict[tuple[int, int], float]:
    """Lowest calibrated two-qubit gate cost for each coupled pair (either direction)."""
    costs: dict[tuple[int, int], float] = {}
    for name in target.operation_names:
        entries = target[name]
        if entries is None or None in entries or name == "swap":
            continue
        for qargs, props in entries.items():
            if len(qargs) != 2:
                continue
            key = (min(qargs), max(qargs))
            costs[key] = min(costs.get(key, math.inf), _cost(props.error if props else None))
    return costs


def readout_cost(target: Target, qubit: int) -> float:
    """Calibrated readout cost of one qubit (0 where the target records none)."""
    entries = target["measure"] if "measure" in target.operation_names else None
    props = entries.get((qubit,)) if entries and None not in entries else None
    return _cost(props.error if props else None)


def best_chain(target: Target, n: int) -> list[int] | None:
    """The connected path of ``n`` physical qubits with the lowest error cost; None if there is none."""
    if n == 1:
        qubits = range(target.num_qubits or 0)
        return [min(qubits, key=lambda q: readout_cost(target, q))] if target.num_qubits else None
    costs = edge_costs(target)
    if not costs:
        return None
    neighbours: dict[int, list[int]] = {}
    for a, b in costs:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    readout = {q: readout_cost(target, q) for q in neighbours}
    best: tuple[float, list[int]] | None = None
    found = 0

    def extend(path: list[int], cost: float) -> None:
        nonlocal best, found
        if best is not None and cost >= best[0] or found >= MAX_CHAINS:
            return
        if len(path) == n:
            found += 1
            best = (cost, list(path))
            return
        for nb in neighbours[path[-1]]:
            if nb not in path:
                path.append(nb)
                extend(path, cost + costs[(min(path[-2], nb), max(path[-2], nb))] + readout[nb])
                path.pop()

    for start in sorted(neighbours):
        extend([start], readout[start])
    return best[1] if best else None
