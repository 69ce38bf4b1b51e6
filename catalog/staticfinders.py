"""Static files that come from installed Python packages rather than from the repo.

plotly.js ships inside the `plotly` wheel (plotly/package_data/plotly.min.js). This
finder exposes it as `vendor/plotly.min.js`, so `runserver`, WhiteNoise and
`collectstatic` all serve the copy pip installed: no CDN, no committed third-party
file (issue 7). htmx comes the same way from django_htmx's own static folder.
"""

from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor"


def _package_files() -> dict[str, Path]:
    """Public name (under PREFIX) -> file on disk, for the packages that are installed."""
    files: dict[str, Path] = {}
    try:
        import plotly
    except ImportError:  # pragma: no cover - plotly is in requirements.txt
        return files
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if plotly_js.is_file():
        files["plotly.min.js"] = plotly_js
    return files


class PackageFileFinder(BaseFinder):
    """Finds `vendor/<name>` among the files of installed packages listed in `_package_files`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.files = _package_files()

    def check(self, **kwargs: Any) -> list:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        if find_all is False and kwargs.get("all"):  # Django < 6 spelled it `all`
            find_all = True
        prefix, _, name = path.partition("/")
        found = str(self.files[name]) if prefix == PREFIX and name in self.files else None
        if find_all:
            return [found] if found else []
        return found or []

    def list(self, ignore_patterns: list[str] | None):
        for name, file in self.files.items():
            storage = FileSystemStorage(location=str(file.parent))
            storage.prefix = PREFIX
            yield name, storage
