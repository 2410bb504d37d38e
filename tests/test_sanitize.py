"""The sanitiser: every terminal control goes (escape sequences in 7- and 8-bit form, C0 controls but
newline and tab, DEL, C1, bidi overrides); text, newlines and tabs stay; single_line makes one line."""

from __future__ import annotations

import re

import pytest

from mlipilot.git_history import format_message
from mlipilot.sanitize import sanitize, single_line, strip_controls, tail

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize("raw, clean", [
    ("a\x1b[31mred\x1b[0m", "ared"),                                    # CSI (SGR)
    ("3\x1b[2K\x1b[1Gaccepted", "3accepted"),                           # CSI erase line, move cursor
    ("x\x1b]0;title\x07y", "xy"),                                       # OSC ended by BEL
    ("x\x1b]8;;http://e\x1b\\link\x1b]8;;\x1b\\", "xlink"),              # OSC hyperlink ended by ST
    ("a\x1bPq#0;2;0;0;0\x1b\\b", "ab"),                                 # DCS (sixel)
    ("a\x1bcb", "ab"),                                                  # ESC c: reset the terminal
    ("a\x1b7b\x1b8c", "abc"),                                           # save / restore cursor
    ("a\x1b(Bb", "ab"),                                                 # charset designation (nF)
    ("x\x1b]unterminated", "xunterminated"),                            # the introducer alone goes
    ("failed\r\x08\x08  accepted", "failed  accepted"),                  # CR and backspaces
    ("a\x9b2Jb\x9d0;t\x9cc\x85d\x7fe", "abcde"),                        # 8-bit CSI, OSC, NEL, DEL
    ("a\x00b\x0bc\x0cd\x1fe", "abcde"),                                 # other C0 controls
    ("ok \u202edeliaf", "ok deliaf"),                                   # a right-to-left override
    ("tab\tnew\nline\r\n", "tab\tnew\nline\n"),                         # newline and tab stay, CRLF is LF
    ("q\ud800z", "q?z"),                                                # a lone surrogate
    ("Å ≤ 3 meV/Å — ok", "Å ≤ 3 meV/Å — ok"),                           # ordinary unicode untouched
])
def test_strip_controls(raw, clean):
    assert strip_controls(raw) == clean
    assert not CONTROL.search(strip_controls(raw).replace("\n", "").replace("\t", ""))


def test_single_line_and_the_other_helpers():
    assert single_line("a\n\tb\r\n  c\x1b[1A", 80) == "a b c"
    assert single_line("x" * 10, 5) == "xxxx…"
    assert sanitize("log \x1b[2J\x1bc line") == "log  line"
    assert tail("one\ntwo\x1b[1A\x08three\n", 1) == "twothree"


def test_commit_messages_hold_no_controls_and_single_line_trailers():
    msg = format_message("try\r\x1b[2Kx", "body\x07\nsecond line",
                         {"Hypothesis": "h\n3  accepted\x1b[1A", "Verdict": "failed", "Reason": "r\x9b1A\x85"})
    assert not CONTROL.search(msg.replace("\n", ""))
    assert msg.splitlines() == ["tryx", "", "body", "second line", "", "MLIPilot-Hypothesis: h 3 accepted",
                                "MLIPilot-Verdict: failed", "MLIPilot-Reason: r"]


def test_the_ledger_stores_no_controls(tmp_path):
    from mlipilot.ledger import Ledger

    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append({"trial": 1, "hypothesis": "a\x1b[2K\rb", "log_tail": ["x\x9b1Ay", {"k": "\x07z"}]})
    assert ledger.verify() is None
    row = ledger.rows()[0]
    assert row["hypothesis"] == "ab" and row["log_tail"] == ["xy", {"k": "z"}]
