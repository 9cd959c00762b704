"""IBM Quantum credentials: keyring round trip, user-only file fallback, and no leak anywhere else."""

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from hqnn_desktop.hardware.credentials import (
    Credentials,
    CredentialsError,
    CredentialStore,
    credentials_file,
    mask,
    scrub,
)
from tests.ibm_standin import GOOD_KEY, INSTANCE, ibm_cloud, memory_keyring, no_keyring  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


def test_keyring_round_trip_and_forget(memory_keyring):  # noqa: F811
    store = CredentialStore()
    assert store.uses_keyring() and "keyring" in store.where()
    assert store.load() is None
    store.save(Credentials(GOOD_KEY, INSTANCE, "ibm_quantum_platform"))
    got = store.load()
    assert (got.token, got.instance, got.channel) == (GOOD_KEY, INSTANCE, "ibm_quantum_platform")
    assert GOOD_KEY not in repr(got) and GOOD_KEY not in str(got) and repr(got).count("•") == 8
    assert not credentials_file().exists()
    store.forget()
    assert store.load() is None and memory_keyring.store == {}
    store.forget()  # forgetting twice is fine


def test_file_fallback_is_private_and_forget_removes_it(no_keyring):  # noqa: F811
    store = CredentialStore()
    assert not store.uses_keyring() and "only you can read" in store.where()
    store.save(Credentials(GOOD_KEY, "", "ibm_cloud"))
    path = credentials_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert store.load().channel == "ibm_cloud"
    path.chmod(0o644)  # opened up by a copy or a chmod: made private again, and what is said stays true
    assert "only you can read" in store.where() and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    assert store.load().channel == "ibm_cloud" and stat.S_IMODE(path.stat().st_mode) == 0o600
    store.forget()
    assert not path.exists() and store.load() is None


@pytest.mark.parametrize("content", [b'{"token": 5}', b'{"token": null}', b"null", b"[]", b'"x"', b"\xff\xfe{",
                                     b'{"token": "OLD', b'{"token": "k", "channel": 3}'])
def test_damaged_saved_credentials_are_named_and_can_be_replaced_or_forgotten(no_keyring, content):  # noqa: F811
    from hqnn_desktop.cli import main

    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    store = CredentialStore()
    with pytest.raises(CredentialsError, match="damaged; save them again"):
        store.load()
    assert main(["hardware-account", "where"]) in (0, 1)  # says where, never a traceback
    store.save(Credentials(GOOD_KEY, INSTANCE))
    assert store.load().token == GOOD_KEY
    path.write_bytes(content)
    store.forget()
    assert not path.exists() and store.load() is None


def test_bad_input_is_refused_in_plain_words(memory_keyring):  # noqa: F811
    with pytest.raises(CredentialsError, match="empty"):
        Credentials("  ")
    with pytest.raises(CredentialsError, match="channel"):
        Credentials(GOOD_KEY, channel="ibm_quantum")
    with pytest.raises(CredentialsError, match="must be text"):
        Credentials(12345)
    for slip in ("bad token with spaces", "key\u00fcnicode", "key\x00x"):  # paste errors, not keys
        with pytest.raises(CredentialsError, match="holds spaces or characters an IBM Quantum key never has"):
            Credentials(slip)
    assert mask("abcdefghijkl").endswith("ijkl") and scrub(f"url?apikey={GOOD_KEY}").endswith(mask(GOOD_KEY))


@pytest.mark.parametrize("use_keyring", [True, False])
def test_the_key_never_leaks(use_keyring, request, ibm_cloud, tmp_path, caplog,  # noqa: F811
                             isolated_user_dirs, capsys):
    """Save, test the connection (good, bad key, no network, bad instance), run, report, list jobs, forget:
    the key is found nowhere but in the keyring or its 0600 fallback file."""
    request.getfixturevalue("memory_keyring" if use_keyring else "no_keyring")
    from hqnn_desktop.cli import main
    from hqnn_desktop.gui.app import setup_logging
    from hqnn_desktop.hardware.service import ServiceError, test_connection

    setup_logging()  # the app's log file, as the window sets it up
    log_handler = logging.getLogger().handlers[-1]
    caplog.set_level(logging.DEBUG)
    store = CredentialStore()
    store.save(Credentials(GOOD_KEY, INSTANCE))
    assert [b.name for b in test_connection()][:1]
    messages = []
    for creds, network in ((Credentials(GOOD_KEY + "x"), True), (Credentials(GOOD_KEY), False),
                           (Credentials(GOOD_KEY, "crn:v1:nope"), True)):
        ibm_cloud.network_up = network
        with pytest.raises(ServiceError) as err:
            test_connection(creds)
        messages.append(str(err.value))
    ibm_cloud.network_up = True
    assert "did not accept the API key" in messages[0] and "network" in messages[1] and "instance" in messages[2]
    sample = next((REPO / "resources" / "samples" / "pbc8").glob("*/*"))
    out = tmp_path / "report.json"
    assert main(["hardware", "--pack", str(REPO / "resources" / "packs" / "pbc8"), "--backend", "ibm_torino",
                 "--input", str(sample), "--shots", "500", "--resilience-level", "0", "--no-dd", "--yes",
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text())["backend"] == "ibm_torino"
    assert main(["hardware-jobs", "list"]) == 0
    assert GOOD_KEY not in caplog.text
    try:  # an error whose text carries the key, as a failed token request would: masked in the log file
        raise RuntimeError(f"request failed: https://iam.cloud.ibm.com/identity/token?apikey={GOOD_KEY}")
    except RuntimeError:
        logging.getLogger("hqnn_desktop.hardware").exception("token request %s", GOOD_KEY)
    logging.getLogger().removeHandler(log_handler)
    log_handler.close()
    assert "token request" in next(Path(isolated_user_dirs).rglob("hqnn-desktop.log")).read_text()
    printed = capsys.readouterr()
    leaks = [str(p) for base in (isolated_user_dirs, tmp_path) for p in Path(base).rglob("*")
             if p.is_file() and GOOD_KEY.encode() in p.read_bytes()]
    expected = [] if use_keyring else [str(credentials_file())]
    assert leaks == expected
    assert GOOD_KEY not in printed.out + printed.err
    assert all(GOOD_KEY not in m for m in messages)
    store.forget()
    assert not any(GOOD_KEY.encode() in p.read_bytes() for base in (isolated_user_dirs, tmp_path)
                   for p in Path(base).rglob("*") if p.is_file())
    assert os.environ.get("QISKIT_IBM_TOKEN") is None
