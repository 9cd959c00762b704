"""IBM Quantum for the HQNN's circuit (Qt-free).

credentials (API key in the keyring or a user-only file), service (log in, list
backends, reach jobs; plain error messages), options (shots, transpiler,
mitigation), layout (best calibrated chain of qubits), emulation (fast
density-matrix emulation of fake devices), runner (transpile once, one
Estimator job per batch), rerun (local pass, plan, execute, report), jobs
(run records on disk), export (CSV and JSON).
"""
