"""The installed distribution's version, read from its metadata (pyproject.toml is the one
place it is written), for the .tflite metadata and ``artery-edge --version``."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("artery-edge")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
