"""A connection's writes in one turn of the event loop reach the socket as one call, in
order, and nothing written is held past that turn or lost by closing."""

from __future__ import annotations

import asyncio
from typing import Any

from eventpro.api.protocol import OneWritePerTurn


class Recorded(asyncio.Transport):
    """A transport that records what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def write_eof(self) -> None:
        self.calls.append(("eof", b""))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 80) if name == "peername" else default


def test_a_head_and_a_body_written_in_one_turn_go_out_as_one_write() -> None:
    async def run() -> list[tuple[str, bytes]]:
        real = Recorded()
        transport = OneWritePerTurn(real, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")
        assert real.calls == []  # held until the turn ends
        await asyncio.sleep(0)
        transport.write(b"next")  # a later turn: a write of its own
        await asyncio.sleep(0)
        assert transport.get_extra_info("peername") == ("127.0.0.1", 80)  # the rest: as is
        return real.calls

    assert asyncio.run(run()) == [
        ("write", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"),
        ("write", b"next"),
    ]


def test_closing_or_ending_the_stream_sends_what_was_written_first() -> None:
    async def run(end: str) -> list[tuple[str, bytes]]:
        real = Recorded()
        transport = OneWritePerTurn(real, asyncio.get_running_loop())
        transport.write(b"answer")
        getattr(transport, end)()
        await asyncio.sleep(0)  # the flush scheduled by the write finds nothing left
        return real.calls

    assert asyncio.run(run("close")) == [("write", b"answer"), ("close", b"")]
    assert asyncio.run(run("write_eof")) == [("write", b"answer"), ("eof", b"")]


def test_nothing_is_written_to_a_transport_that_closed_meanwhile() -> None:
    async def run() -> list[tuple[str, bytes]]:
        real = Recorded()
        transport = OneWritePerTurn(real, asyncio.get_running_loop())
        transport.write(b"late")
        real.close()  # the peer went away before the turn ended
        await asyncio.sleep(0)
        return real.calls

    assert asyncio.run(run()) == [("close", b"")]
