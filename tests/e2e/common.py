"""What the end-to-end tests share: the one recorded request, the weather tool, and concurrent
traffic with every answer kept for asserting."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")

HELLO = [{"role": "user", "content": "hello there"}]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def only(requests: list) -> dict:
    """The one request a test expects the mock to have received."""
    assert len(requests) == 1, requests
    return requests[0]


def concurrently(call: Callable[[int], T], total: int = 100, in_flight: int = 20) -> list[T]:
    """`call(i)` for i in range(total), `in_flight` at a time; the results in order. An
    exception a call raises is returned in its place, so a test asserts every answer."""

    def guarded(i: int):
        try:
            return call(i)
        except Exception as e:  # noqa: BLE001 - the test asserts what each call gave
            return e

    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        return list(pool.map(guarded, range(total)))
