"""IBM Quantum credentials: API key, instance (CRN) and channel, kept out of every ordinary file.

They live in the OS keyring (through ``keyring``). Where no usable keyring
exists (headless Linux without Secret Service: keyring's ``fail`` or ``null``
backend, or a chainer with nothing to chain), they go to one JSON file in the
user data folder that only the user can read (0600 in a 0700 folder, written
atomically), and :meth:`CredentialStore.where` says so. The key never goes to
settings, logs, reports or exports; :func:`scrub` removes it from any text (an
exception message, for example) before that text is shown or logged.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core.paths import data_dir

SERVICE = "hqnn-desktop/ibm-quantum"
ACCOUNT = "default"
CHANNELS = ("ibm_quantum_platform", "ibm_cloud")
DEFAULT_CHANNEL = "ibm_quantum_platform"

#: Secrets seen in this process, removed from text by :func:`scrub`.
_KNOWN_SECRETS: set[str] = set()


class CredentialsError(Exception):
    """Credentials that cannot be saved or read, explained."""


@dataclass(frozen=True)
class Credentials:
    """What QiskitRuntimeService needs to log in."""

    token: str
    instance: str = ""
    channel: str = DEFAULT_CHANNEL

    def __post_init__(self) -> None:
        if not all(isinstance(v, str) for v in (self.token, self.instance, self.channel)):
            raise CredentialsError("The API key, instance and channel must be text.")
        if not self.token.strip():
            raise CredentialsError("The API key is empty.")
        if any(c.isspace() or not c.isascii() or not c.isprintable() for c in self.token.strip()):
            # IBM's keys are letters, digits, '-' and '_': a space or an odd character is a paste slip
            raise CredentialsError("The API key holds spaces or characters an IBM Quantum key never has; copy it "
                                   "again from your IBM Quantum account page (only the key, nothing around it).")
        if self.channel not in CHANNELS:
            raise CredentialsError(f"The channel is one of {', '.join(CHANNELS)}.")
        _KNOWN_SECRETS.add(self.token)

    def __repr__(self) -> str:
        return f"Credentials(token={mask(self.token)!r}, instance={self.instance!r}, channel={self.channel!r})"

    __str__ = __repr__


def mask(token: str) -> str:
    """What the UI may show of a key: its last four characters."""
    return "•" * 8 + token[-4:] if len(token) > 8 else "•" * 8


def scrub(text: str) -> str:
    """``text`` with every API key this process has seen replaced by a mask."""
    for secret in _KNOWN_SECRETS:
        if secret:
            text = text.replace(secret, mask(secret))
    return text


class ScrubSecrets(logging.Filter):
    """A log filter for handlers that write files: known API keys are masked in messages and tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = scrub(text)
        if clean != text:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def keyring_usable() -> bool:
    """False for keyring's ``fail``/``null`` backends and for a chainer with nothing to chain."""
    import keyring
    from keyring.backends import chainer, fail, null

    kr = keyring.get_keyring()
    if isinstance(kr, (fail.Keyring, null.Keyring)):
        return False
    if isinstance(kr, chainer.ChainerBackend):
        return bool(kr.backends)
    return True


def credentials_file() -> Path:
    """The fallback file (used only where no keyring is usable)."""
    return data_dir() / "credentials" / "ibm_quantum.json"


def _write_private(path: Path, text: str) -> None:
    """Atomic write of a file only the user can read or write, in a folder only the user can enter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, stat.S_IRWXU)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _kept_private(path: Path) -> bool:
    """Whether only the user can read the key file, making it so again where it was opened up
    (a copy, a backup restore, a chmod): the key must not sit readable by others."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
            mode = path.stat().st_mode
    except OSError:  # not ours to change: said as it is
        return False
    return not mode & (stat.S_IRWXG | stat.S_IRWXO)


class CredentialStore:
    """Save, load and forget the IBM Quantum credentials (keyring, or the user-only file)."""

    def uses_keyring(self) -> bool:
        return keyring_usable()

    def where(self) -> str:
        """Where the credentials are kept, in words for the UI."""
        if self.uses_keyring():
            import keyring

            return f"the system keyring ({type(keyring.get_keyring()).__name__})"
        path = credentials_file()
        if path.exists() and not _kept_private(path):
            return (f"a file that others on this computer can read ({path}); make it private (chmod 600) "
                    "or forget the key and save it again; no system keyring is available")
        return f"a file only you can read ({path}); no system keyring is available"

    def save(self, creds: Credentials) -> None:
        blob = json.dumps({"token": creds.token, "instance": creds.instance, "channel": creds.channel})
        if self.uses_keyring():
            import keyring
            from keyring.errors import KeyringError

            try:
                keyring.set_password(SERVICE, ACCOUNT, blob)
            except KeyringError as exc:
                raise CredentialsError(f"The system keyring refused to store the key: {scrub(str(exc))}") from None
            return
        _write_private(credentials_file(), blob)

    def load(self) -> Credentials | None:
        """The saved credentials, or None when nothing is saved."""
        if self.uses_keyring():
            import keyring
            from keyring.errors import KeyringError

            try:
                blob = keyring.get_password(SERVICE, ACCOUNT)
            except KeyringError as exc:
                raise CredentialsError(f"The system keyring could not be read: {scrub(str(exc))}") from None
        else:
            path = credentials_file()
            try:
                if path.exists():
                    _kept_private(path)
                blob = path.read_text(encoding="utf-8") if path.exists() else None
            except UnicodeDecodeError:
                blob = "damaged"  # not text: treated as any other damaged content below
            except OSError as exc:
                raise CredentialsError(f"The saved IBM Quantum credentials cannot be read ({exc.strerror}).") from None
        if not blob:
            return None
        try:
            data = json.loads(blob)
            return Credentials(data["token"], data.get("instance", ""), data.get("channel", DEFAULT_CHANNEL))
        except (ValueError, KeyError, TypeError, AttributeError, CredentialsError):
            raise CredentialsError("The saved IBM Quantum credentials are damaged; save them again.") from None

    def forget(self) -> None:
        """Remove the saved credentials from the keyring and the fallback file (whichever holds them)."""
        if self.uses_keyring():
            import keyring
            from keyring.errors import PasswordDeleteError

            try:
                keyring.delete_password(SERVICE, ACCOUNT)
            except PasswordDeleteError:
                pass
        credentials_file().unlink(missing_ok=True)
