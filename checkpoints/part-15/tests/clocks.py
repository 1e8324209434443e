"""A clock the test moves by hand, for code that takes ``clock: Callable[[], float]``."""


class Clock:
    """Returns ``now``, which the test sets and moves."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
