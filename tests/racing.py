"""Two transactions at once, the second started while the first is open: how the tests show that
a lock makes the second wait (and then see the first) instead of checking the rows before it."""
from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session


def second_waits_for_first(engine: Engine, first: Callable[[Session], object], second: Callable[[], object]) -> None:
    """Run `first` in a transaction of its own; while it is open (flushed, not committed), start
    `second` in a thread and give it a second to get past it wrongly; then commit and let it end."""
    with Session(engine) as mine:
        first(mine)
        mine.flush()
        racer = threading.Thread(target=second)
        racer.start()
        racer.join(timeout=1)
        mine.commit()
    racer.join(timeout=10)
