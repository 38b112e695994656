"""The exceptions users see for bad input: a config (`ConfigError`), stored results that
cannot make the figure asked for (`PlotError`)."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad configuration: names the file and the dotted key when they are known.

    Raised by config loading and by the constructors of targets and learners
    (which know the key but not the file); `config.load` fills in the rest.
    """

    def __init__(self, message: str, key: str | None = None, file: str | None = None):
        self.message = message
        self.key = key
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.key) if p)
        return f"{where}: {self.message}" if where else self.message

    def within(self, prefix: str | None = None, file: str | None = None) -> "ConfigError":
        """The same error with the key prefixed (e.g. `target.` + `k`) and the file set."""
        key = self.key
        if prefix:
            key = f"{prefix}.{key}" if key else prefix
        return ConfigError(self.message, key=key, file=file or self.file)


def require(condition: bool, key: str, message: str) -> None:
    """Raise `ConfigError(message, key)` unless `condition` holds."""
    if not condition:
        raise ConfigError(message, key=key)


class PlotError(ValueError):
    """Stored results that cannot make the figure asked for: no runs or curves to draw, a grid
    without the axes the kind of figure needs, too few points to fit. The command line exits 2
    on it; any other exception inside plotting is an internal error."""


class FitFailed(RuntimeError):
    """A learner that can tell it did not find a consistent hypothesis (e.g. GF(2)
    elimination on noisy labels) raises this; the run is stored as `failed` with the reason."""
