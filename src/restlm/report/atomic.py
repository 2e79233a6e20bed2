"""The report's atomic writes are the run directory's (restlm.runs): one atomic writer."""
from __future__ import annotations

from restlm.atomic_files import write_atomic as write_text_atomic
from restlm.atomic_files import write_bytes_atomic

__all__ = ["write_bytes_atomic", "write_text_atomic"]
