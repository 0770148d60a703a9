"""A plugin the tests block with [plugins] disable; importing it would fail loudly."""

raise RuntimeError("a blocked plugin must never be imported")
