"""One error type for bad input, so every front end can print one clear line and exit 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from a user: a file, a key or line in it, and what was expected.

    `str(err)` is the single line a user sees, e.g.
    ``data/val.npz: key 'contexts': expected shape (N, 5, D), got (10, 768)``.
    """

    def __init__(self, source: str, message: str, where: str | None = None) -> None:
        self.source = str(source)
        self.where = where
        self.message = message
        super().__init__(self.line())

    def line(self) -> str:
        parts = [self.source]
        if self.where:
            parts.append(self.where)
        parts.append(self.message)
        return ": ".join(parts)


class InputErrors(InputError):
    """Several problems found at once (plan validation reports them all, not the first)."""

    def __init__(self, source: str, errors: list[InputError]) -> None:
        self.errors = errors
        super().__init__(source, f"{len(errors)} problem(s)")

    def lines(self) -> list[str]:
        return [e.line() for e in self.errors]


def problems(exc: InputError) -> list[InputError]:
    """Every problem an InputError carries: its list for InputErrors, else itself. A validator
    that gathers problems from a part checked elsewhere writes one `except InputError`."""
    return list(exc.errors) if isinstance(exc, InputErrors) else [exc]


def raise_all(source: str, errors: list[InputError]) -> None:
    """Raise the problems found, if any: one as itself, several as InputErrors."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InputErrors(source, errors)


class PluginFault(Exception):
    """A call into a plugin failed: it raised, or returned a wrong type, shape or dtype. The
    message is one line naming the plugin, its distribution and version, the term and the step;
    the trainer ends the run `failed` with the last complete checkpoint kept."""


class EnvironmentProblem(InputError):
    """The machine refused, not the input: no space, no permission, a read-only folder, a
    missing device. One line naming the path and the cause; exit code 4."""


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: the path and the cause, e.g.
    ``runs/q/run.json: no space left on device (ENOSPC)``."""
    import errno as _errno

    path = exc.filename if exc.filename is not None else "(no path)"
    cause = (exc.strerror or str(exc)).rstrip(".")
    code = _errno.errorcode.get(exc.errno or -1)
    return f"{path}: {cause[:1].lower() + cause[1:]}" + (f" ({code})" if code else "")


#: errno values that say the input is wrong (a path that is not there), not the machine
BAD_PATH_ERRNOS = (2, 20, 21)  # ENOENT, ENOTDIR, EISDIR
