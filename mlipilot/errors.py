"""User-facing errors: one line that names the file, the field and the fix."""

import difflib


class MLIPilotError(Exception):
    """An error the CLI prints as a single line (no traceback) and exits non-zero on."""


def config_error(path: object, field: str, problem: str, fix: str) -> MLIPilotError:
    return MLIPilotError(f"{path}: field '{field}': {problem} — {fix}")


def check_keys(d: dict, allowed: object, path: object, where: str = "") -> None:
    """Refuse a key that is not in `allowed`, naming the nearest valid one (a misspelled key must
    never fall back silently to its default)."""
    allowed = list(allowed)
    for key in d:
        if key not in allowed:
            near = nearest(key, [str(a) for a in allowed])
            fix = f"did you mean '{near}'?" if near else f"valid keys: {', '.join(sorted(map(str, allowed)))}"
            raise config_error(path, f"{where}{key}", "unknown key", fix)


def nearest(name: object, names: list[str] | tuple[str, ...], cutoff: float = 0.6) -> str | None:
    """The known name closest to a misspelling, or None (the "did you mean" of every error)."""
    near = difflib.get_close_matches(str(name), [str(n) for n in names], n=1, cutoff=cutoff)
    return near[0] if near else None
