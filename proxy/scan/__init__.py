"""Model-artifact scanner: content-sniffed formats, allow-listed pickles, bounded containers.

``scan_file`` is blocking and pure (no network, no writes besides anonymous temp files for
nested archives that need random access); callers run it in a worker thread.
"""

from .allowlist import load_allowlist
from .api import scan_file
from .model import SCANNER_VERSION, Finding, Limits, ScanResult

__all__ = ["SCANNER_VERSION", "Finding", "Limits", "ScanResult", "load_allowlist", "scan_file"]
