"""A stand-in for the IBM Quantum cloud service, the one boundary that cannot run offline.

It answers like ``QiskitRuntimeService``: the constructor logs in (or raises the
runtime's own exception classes for a bad key, an unknown instance or no
network), ``backends()``/``backend(name)`` give real fake-backend objects
(calibrated, runnable locally) under the names of real devices, and
``job(job_id)`` gives jobs with ``status()``/``result()``/``cancel()`` whose
results are real Estimator results. Also a dictionary keyring (the OS keyring
boundary) through keyring's own ``KeyringBackend``.
"""

from __future__ import annotations

from typing import ClassVar

import keyring
import pytest
import requests
from keyring.backend import KeyringBackend

GOOD_KEY = "standin-APIKEY-7f3a9c21e4b8d6059a1f"
INSTANCE = "crn:v1:bluemix:public:quantum-computing:us-east:a/0123abcd:4567ef89::"
DEVICES = {"ibm_torino": "FakeTorino", "ibm_brisbane": "FakeBrisbane", "ibm_fez": "FakeFez"}


class StandInJob:
    """A cloud job: its status moves only when the test says so."""

    def __init__(self, job_id: str, result=None, status: str = "QUEUED", error: str | None = None) -> None:
        self._id, self._result, self.state, self._error = job_id, result, status, error

    def job_id(self) -> str:
        return self._id

    def status(self) -> str:
        return self.state

    def result(self):
        from qiskit_ibm_runtime.exceptions import RuntimeInvalidStateError, RuntimeJobFailureError

        if self.state == "ERROR":
            raise RuntimeJobFailureError(f"Unable to retrieve job result. {self._error}")
        if self.state == "CANCELLED":
            raise RuntimeInvalidStateError("Unable to retrieve result for job. Job was cancelled.")
        return self._result

    def cancel(self) -> None:
        from qiskit_ibm_runtime.exceptions import RuntimeInvalidStateError

        if self.state in ("DONE", "ERROR", "CANCELLED"):
            raise RuntimeInvalidStateError(f"Job cannot be cancelled: it is {self.state}")
        self.state = "CANCELLED"


class StandInService:
    """Same constructor, methods and exceptions as ``QiskitRuntimeService`` for what the app uses."""

    network_up = True
    jobs: ClassVar[dict[str, StandInJob]] = {}
    logins: ClassVar[list[dict]] = []

    def __init__(self, channel: str, token: str, instance: str | None) -> None:
        from qiskit_ibm_runtime.api.exceptions import RequestsApiError
        from qiskit_ibm_runtime.exceptions import IBMInputValueError, IBMNotAuthorizedError

        type(self).logins.append({"channel": channel, "instance": instance})
        if not type(self).network_up:
            try:
                raise requests.ConnectionError(
                    f"HTTPSConnectionPool(host='iam.cloud.ibm.com'): Max retries exceeded with url: "
                    f"/identity/token?apikey={token} (Caused by NameResolutionError)")
            except requests.ConnectionError as exc:
                raise RequestsApiError(str(exc)) from exc
        if token != GOOD_KEY:
            raise IBMNotAuthorizedError(f"401 Client Error: Unauthorized for url. Provided API key could not be "
                                        f"found ({token}). Error code: BXNIM0415E.")
        if instance and instance != INSTANCE:
            raise IBMInputValueError(f"The instance specified ({instance}) is not a valid instance name.")

    def backends(self):
        return [self.backend(name) for name in DEVICES]

    def backend(self, name: str):
        from qiskit.providers.exceptions import QiskitBackendNotFoundError
        from qiskit_ibm_runtime import fake_provider

        if name not in DEVICES:
            raise QiskitBackendNotFoundError("No backend matches the criteria.")
        device = getattr(fake_provider, DEVICES[name])()
        device.name = name
        return device

    def job(self, job_id: str) -> StandInJob:
        from qiskit_ibm_runtime.exceptions import RuntimeJobNotFound

        if job_id not in type(self).jobs:
            raise RuntimeJobNotFound(f"Job not found: {job_id}")
        return type(self).jobs[job_id]


class DictKeyring(KeyringBackend):
    """An in-memory keyring with keyring's own backend interface."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


@pytest.fixture
def memory_keyring():
    """The OS keyring replaced by a dictionary for one test."""
    previous = keyring.get_keyring()
    kr = DictKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring():
    """No usable keyring (keyring's own 'fail' backend), as on a headless Linux box."""
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def ibm_cloud(monkeypatch):
    """The IBM Quantum cloud replaced by the stand-in (network up, no jobs yet)."""
    from hqnn_desktop.hardware import service

    monkeypatch.setattr(StandInService, "network_up", True)
    monkeypatch.setattr(StandInService, "jobs", {})
    monkeypatch.setattr(StandInService, "logins", [])
    monkeypatch.setattr(service, "runtime_service", StandInService)
    return StandInService
