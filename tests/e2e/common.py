"""What the end-to-end tests share: the requests they send, the weather tool, how they read what
comes back (streams, errors, metrics, the mock's records) and concurrent traffic with every
answer kept for asserting."""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")

HELLO = [{"role": "user", "content": "hello there"}]
# With a system turn: the mock counts 2 + 2 words and 3 per message, so 10 prompt tokens; its
# answer "echo: hello there" is 3.
BRIEF_HELLO = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
BRIEF_HELLO_USAGE = (10, 3, 13)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
# The same tool as Anthropic's Messages API declares it.
ANTHROPIC_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_TOOL["function"]["parameters"],
}

# Every OpenAI error object has exactly these fields.
ERROR_FIELDS = {"message", "type", "param", "code"}


def only(requests: list) -> dict:
    """The one request a test expects the mock to have received."""
    assert len(requests) == 1, requests
    return requests[0]


def sha256_hex(key: str) -> str:
    """How a configuration names a virtual key."""
    return hashlib.sha256(key.encode()).hexdigest()


def streamed_text(chunks) -> str:
    """The assistant text of a chat stream (the SDK's chunks)."""
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def extra_field(obj, name: str):
    """A field the OpenAI SDK does not model (e.g. `reasoning_content`)."""
    return (obj.model_extra or {}).get(name)


def assert_clean_stream(chunks) -> None:
    """One OpenAI chat stream: one id, the role in the first chunk and only there, one finish."""
    assert len({c.id for c in chunks}) == 1, [c.id for c in chunks]
    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles == ["assistant"] and chunks[0].choices[0].delta.role == "assistant", roles
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1, finishes


def assert_openai_error(error: dict, where: str = "") -> dict:
    """An OpenAI error object (the `error` member of an answer, or an SDK exception's `body`)
    with its four fields and a message; returned for further checks. `where` names the answer
    in a failure."""
    assert isinstance(error, dict) and set(error) == ERROR_FIELDS, f"{where}: {error}"
    assert isinstance(error["message"], str) and error["message"], f"{where}: {error}"
    return error


def scrape(gateway) -> dict:
    """Our series in Envoy's `/stats/prometheus` as {(name, frozenset(labels)): value}."""
    out = {}
    for line in gateway.prometheus().splitlines():
        m = re.match(r"^(switchboard_\w+)\{(.*)\} (\S+)$", line)
        if m:
            out[(m.group(1), frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2))))] = float(m.group(3))
    return out


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
