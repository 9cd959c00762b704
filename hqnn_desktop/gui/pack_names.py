"""The one check before a tab saves a new pack under a name the user typed.

The Training tab and the Review tab's fine-tuning both write a pack into the
user's packs folder; both must refuse names that cannot be folders or that a
bundled pack has, and ask before replacing a pack of the user's own.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def new_pack_problem(parent: QWidget, name: str) -> str | None:
    """Why no pack should be saved as ``name`` now, in words; None to go ahead (the user agreed to
    replace an existing pack of that name, or there is none)."""
    from ..core.packs import PackError, check_pack_name, user_packs_dir

    try:
        check_pack_name(name)
    except PackError as exc:
        return str(exc)
    if (user_packs_dir() / name).exists() and QMessageBox.question(
            parent, "Replace the pack?", f"A pack named {name} already exists in your packs folder. "
            "Replace it with the one about to be trained?") != QMessageBox.Yes:
        return "Nothing started: choose another pack name to keep the existing pack."
    return None
