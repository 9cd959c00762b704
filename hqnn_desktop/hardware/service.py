"""The IBM Quantum account: log in with the saved credentials, list backends, reach earlier jobs.

Every failure becomes a :class:`ServiceError` whose message says, in plain
words, whether the network is down, the key is wrong, or the instance is
unknown, with the API key scrubbed from any text that came from below.
:func:`runtime_service` is the single place that builds a
``QiskitRuntimeService``; offline tests replace it with a stand-in that
behaves the same way (same methods, real exception classes).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

from .credentials import Credentials, CredentialStore, scrub


class ServiceError(Exception):
    """The IBM Quantum service could not do what was asked; the message is for the user."""


def runtime_service(channel: str, token: str, instance: str | None):
    """A logged-in ``QiskitRuntimeService`` (never saves the account to ~/.qiskit)."""
    from qiskit_ibm_runtime import QiskitRuntimeService

    chatty = logging.getLogger("qiskit_ibm_runtime.qiskit_runtime_service")
    level = chatty.level
    chatty.setLevel(logging.ERROR)  # its "a saved account will not be used" warning: we never use one
    try:
        return QiskitRuntimeService(channel=channel, token=token, instance=instance)
    finally:
        chatty.setLevel(level)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _offline(exc: BaseException) -> bool:
    import requests

    for e in _chain(exc):
        if isinstance(e, (requests.ConnectionError, requests.Timeout, socket.gaierror, ConnectionError,
                          TimeoutError)):
            return True
        if getattr(e, "status_code", None) == -1 and "connection" in str(e).lower():
            return True
    return False


def explain(exc: BaseException, instance: str = "") -> str:
    """A plain message for an exception from qiskit-ibm-runtime, with any API key scrubbed."""
    from qiskit.providers.exceptions import QiskitBackendNotFoundError
    from qiskit_ibm_runtime.accounts.exceptions import InvalidAccountError
    from qiskit_ibm_runtime.exceptions import (
        IBMInputValueError,
        IBMNotAuthorizedError,
        RuntimeJobFailureError,
        RuntimeJobNotFound,
    )

    detail = scrub(str(exc)).strip()
    if _offline(exc):
        return "Cannot reach IBM Quantum: check the network connection (or a proxy or firewall) and try again."
    if isinstance(exc, (IBMNotAuthorizedError, InvalidAccountError)) or getattr(exc, "code", None) in (400, 401):
        return "IBM Quantum did not accept the API key: check it (IBM Quantum Platform, API keys) and save it again."
    if isinstance(exc, IBMInputValueError) and "instance" in detail.lower():
        return (f"IBM Quantum does not know the instance '{instance}' for this key: copy its CRN from the "
                "IBM Quantum Platform (Instances) or leave the field empty to use any instance of the key.")
    if isinstance(exc, RuntimeJobNotFound):
        return "IBM Quantum has no job with that id for this account."
    if isinstance(exc, RuntimeJobFailureError):
        return f"The job failed on IBM Quantum: {detail}"
    if isinstance(exc, QiskitBackendNotFoundError):
        return f"This account has no such backend ({detail})."
    return f"IBM Quantum reported a problem: {detail or type(exc).__name__}"


@dataclass
class BackendInfo:
    """One row of the backend list."""

    name: str
    num_qubits: int
    pending_jobs: int | None
    operational: bool | None
    status: str


def connect(creds: Credentials | None = None):
    """Log in with ``creds`` (default: the saved ones); :class:`ServiceError` says why not."""
    creds = creds or CredentialStore().load()
    if creds is None:
        raise ServiceError("No IBM Quantum API key is saved: save one in the Hardware tab or with "
                           "'hqnn-desktop hardware-account save'.")
    try:
        return runtime_service(creds.channel, creds.token, creds.instance or None)
    except Exception as exc:  # noqa: BLE001 - any runtime failure becomes a plain message
        raise ServiceError(explain(exc, creds.instance)) from None


def describe(backend) -> BackendInfo:
    """Name, qubits, queue and status of a backend (status fields may be missing offline)."""
    try:
        st = backend.status()
        pending, operational, msg = st.pending_jobs, st.operational, st.status_msg
    except Exception:  # noqa: BLE001 - status is a network call on real devices
        pending, operational, msg = None, None, "unknown"
    return BackendInfo(backend.name, int(backend.num_qubits), pending, operational, str(msg))


def list_backends(service) -> list[BackendInfo]:
    """The account's backends, least busy first."""
    try:
        infos = [describe(b) for b in service.backends()]
    except Exception as exc:  # noqa: BLE001 - any runtime failure becomes a plain message
        raise ServiceError(explain(exc)) from None
    return sorted(infos, key=lambda b: (not b.operational, b.pending_jobs if b.pending_jobs is not None else 1e9))


def test_connection(creds: Credentials | None = None) -> list[BackendInfo]:
    """Log in and list the backends: the whole check behind the Test connection button."""
    return list_backends(connect(creds))


def backend_by_name(service, name: str):
    """A backend of the account, by the name the runtime gives it (e.g. ``ibm_torino``)."""
    try:
        return service.backend(name)
    except Exception as exc:  # noqa: BLE001 - any runtime failure becomes a plain message
        raise ServiceError(explain(exc)) from None


def get_job(service, job_id: str):
    """An earlier job of the account (its status, result and cancel go to IBM Quantum)."""
    try:
        return service.job(job_id)
    except Exception as exc:  # noqa: BLE001 - any runtime failure becomes a plain message
        raise ServiceError(explain(exc)) from None


def job_status(job) -> str:
    """The job's status as one word (runtime jobs give strings, local jobs an enum)."""
    status = job.status()
    return getattr(status, "name", str(status)).upper()
