"""Make text safe to store or show: no terminal controls, no secrets, bounded length."""

from __future__ import annotations

import os
import re

# Terminal escape sequences, 7-bit (ESC ...) and 8-bit (C1) forms: CSI; the string controls OSC, DCS,
# SOS, PM and APC up to their terminator (BEL or ST); and every other ESC sequence (ESC c resets the
# terminal, ESC 7/8 move the cursor back). An unterminated string control loses only its introducer.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]?"
)
# What is left: C0 controls but newline and tab (a backspace or carriage return overwrites what was
# shown), DEL, C1 controls, and the bidirectional overrides and isolates that reorder a line on screen.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SECRET_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{16,}"),                      # OpenAI-style keys
    re.compile(r"(?i)(api[_-]?key|token|secret|password)\s*[=:]\s*\S+"),
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-]{12,}"),
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"hf_[A-Za-z0-9]{20,}"),
]


def strip_controls(text: str) -> str:
    """`text` with every terminal control removed: escape sequences, C0 controls other than newline
    and tab, DEL, C1 controls, bidi overrides. CRLF becomes LF; lone surrogates become "?"."""
    text = str(text).encode("utf-8", "replace").decode("utf-8")
    return _CONTROLS.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n")))


def single_line(text: object, limit: int | None = None) -> str:
    """One line of plain text (a git trailer, a table cell): controls stripped, whitespace runs (newlines
    included) made one space, cut to `limit` characters with an ellipsis."""
    text = re.sub(r"\s+", " ", strip_controls(str(text))).strip()
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _env_secrets() -> list[str]:
    keys = [k for k in os.environ if re.search(r"(?i)(key|token|secret|password)", k)]
    return [os.environ[k] for k in keys if len(os.environ[k]) >= 8]


def sanitize(text: str, limit: int = 4000) -> str:
    text = strip_controls(text)
    for value in _env_secrets():
        text = text.replace(value, "[REDACTED]")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("[REDACTED]", text)
    if len(text) > limit:
        text = "…[truncated]…\n" + text[-limit:]
    return text


def tail(text: str, lines: int = 40, limit: int = 4000) -> str:
    return sanitize("\n".join(text.splitlines()[-lines:]), limit)
