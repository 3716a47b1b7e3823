# The compiled partial hide action in _partialmask.c; gateway.masking builds these.
from collections.abc import Callable
from typing import Any

class PartialMask:
    def __init__(
        self, keep_first: int, keep_last: int, other: Callable[[Any, PartialMask], Any]
    ) -> None: ...
    def __call__(self, value: Any, /) -> Any: ...
