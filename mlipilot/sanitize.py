"""Make text safe to store or show: no ANSI escapes, no secrets, bounded length."""

from __future__ import annotations

import os
import re

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
_SECRET_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{16,}"),                      # OpenAI-style keys
    re.compile(r"(?i)(api[_-]?key|token|secret|password)\s*[=:]\s*\S+"),
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-]{12,}"),
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"hf_[A-Za-z0-9]{20,}"),
]


def _env_secrets() -> list[str]:
    keys = [k for k in os.environ if re.search(r"(?i)(key|token|secret|password)", k)]
    return [os.environ[k] for k in keys if len(os.environ[k]) >= 8]


def sanitize(text: str, limit: int = 4000) -> str:
    text = _ANSI.sub("", text)
    for value in _env_secrets():
        text = text.replace(value, "[REDACTED]")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[REDACTED]", text)
    if len(text) > limit:
        text = "…[truncated]…\n" + text[-limit:]
    return text


def tail(text: str, lines: int = 40, limit: int = 4000) -> str:
    return sanitize("\n".join(text.splitlines()[-lines:]), limit)
