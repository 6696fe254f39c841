"""Alliance: a French-first, cited assistant over the "faire alliance" corpus."""

from assistant.core import Assistant
from assistant.settings import Settings
from assistant.types import Answer, DocumentReport, Hit, RefreshReport

__all__ = ["Answer", "Assistant", "DocumentReport", "Hit", "RefreshReport", "Settings"]
__version__ = "0.1.0"
