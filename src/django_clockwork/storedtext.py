"""How much error text is stored, and which part of it.

Exception messages, tracebacks and load errors come from user data (a job's exception, a
hand-edited row) and can be any size: a 5 MB invalid trigger makes a 5 MB error message. Each
column keeps a bounded part, marked where it was cut: the start of a message (it names the
error), the end of a traceback (the frames nearest the error, and the error itself).
"""

from __future__ import annotations

#: Longest text kept in ``JobExecution.exception`` (the start of the message).
EXCEPTION_MAX = 4000
#: Longest text kept in ``JobExecution.traceback`` (the end of the traceback).
TRACEBACK_MAX = 16000
#: Longest text kept in ``Job.load_error`` (the start of the message).
LOAD_ERROR_MAX = 4000


def head(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start and a note of the cut."""
    if len(text) <= limit:
        return text
    note = f" [... {len(text):,} characters in all, cut]"
    if limit <= len(note):
        return text[:limit]
    return text[: limit - len(note)] + note


def tail(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else a note of the cut and its end."""
    if len(text) <= limit:
        return text
    note = f"[{len(text):,} characters in all, cut to the last ones ...]\n"
    if limit <= len(note):
        return text[len(text) - limit :]
    return note + text[len(text) - (limit - len(note)) :]
