"""An answer's head and body reach the socket as one write (`api/protocol.OneWritePerTick`)."""

from __future__ import annotations

import asyncio

from eventpro.api.protocol import OneWritePerTick


class Recording(asyncio.Transport):
    """A transport that records what reaches it, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(("write", bytes(data)))

    def write_eof(self) -> None:
        self.calls.append(("eof", b""))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", b""))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_writes_of_one_tick_leave_as_one_and_ticks_keep_their_order() -> None:
    async def scenario() -> list[tuple[str, bytes]]:
        raw = Recording()
        held = OneWritePerTick(raw, asyncio.get_running_loop())
        held.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
        held.write(b'{"a":1}')
        assert raw.calls == []  # nothing leaves before the tick ends
        await asyncio.sleep(0)
        held.write(b"next")
        await asyncio.sleep(0)
        assert held.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the transport's
        return raw.calls

    calls = asyncio.run(scenario())
    assert calls == [("write", b'HTTP/1.1 202 Accepted\r\n\r\n{"a":1}'), ("write", b"next")]


def test_closing_or_ending_sends_what_is_held_first() -> None:
    async def scenario() -> list[tuple[str, bytes]]:
        raw = Recording()
        held = OneWritePerTick(raw, asyncio.get_running_loop())
        held.write(b"answer")
        held.write_eof()
        held.write(b"late")
        held.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left, and the socket closed
        return raw.calls

    calls = asyncio.run(scenario())
    assert calls == [("write", b"answer"), ("eof", b""), ("write", b"late"), ("close", b"")]
