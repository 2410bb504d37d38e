"""User-facing errors: one line that names the file, the field and the fix."""


class MLIPilotError(Exception):
    """An error the CLI prints as a single line (no traceback) and exits non-zero on."""


def config_error(path: object, field: str, problem: str, fix: str) -> MLIPilotError:
    return MLIPilotError(f"{path}: field '{field}': {problem} — {fix}")


def check_keys(d: dict, allowed: object, path: object, where: str = "") -> None:
    """Refuse a key that is not in `allowed`, naming the nearest valid one (a misspelled key must
    never fall back silently to its default)."""
    from mlipilot.registry import nearest  # late: registry.py raises these errors

    allowed = list(allowed)
    for key in d:
        if key not in allowed:
            near = nearest(key, [str(a) for a in allowed])
            fix = f"did you mean '{near}'?" if near else f"valid keys: {', '.join(sorted(map(str, allowed)))}"
            raise config_error(path, f"{where}{key}", "unknown key", fix)
