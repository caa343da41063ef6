"""artery-edge: train a MobileNetV2 image classifier, ship it as TFLite, run it on edge devices.

The project's folders (``trainer/``, ``edge/``, ``converters/``, ``evaluation/``) install as
``artery_edge.trainer`` and so on (``pyproject.toml``'s ``package-dir``), so no import name can
clash with another project's ``trainer`` or ``edge``. Run from a source checkout without
installing (a study, the arm64 check), the same names resolve to the folders beside this one.
"""

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
if not (Path(__file__).parent / "edge").is_dir() and (_CHECKOUT / "pyproject.toml").is_file() \
        and (_CHECKOUT / "edge" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))  # noqa: F821 - a package's own __path__

from artery_edge.edge.version import __version__  # noqa: E402

__all__ = ["__version__"]
