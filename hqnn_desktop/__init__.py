"""hqnn-desktop: blood-cell images classified by a hybrid quantum-classical network and its classical twins."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hqnn-desktop")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown (not installed)"
