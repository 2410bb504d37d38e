"""User-facing errors: one line that names the file, the field and the fix."""


class MLIPilotError(Exception):
    """An error the CLI prints as a single line (no traceback) and exits non-zero on."""


def config_error(path: object, field: str, problem: str, fix: str) -> MLIPilotError:
    return MLIPilotError(f"{path}: field '{field}': {problem} — {fix}")
