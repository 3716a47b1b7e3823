# The compiled scanner in _piiscan.c; gateway.pii.count_pii is its one caller.

def scan(
    body: bytes, today: bytes, /
) -> tuple[int, int, int, int, list[tuple[int, int, int]]]: ...
