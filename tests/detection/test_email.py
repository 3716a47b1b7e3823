"""The optional e-mail notifier against a minimal SMTP server on loopback."""

from __future__ import annotations

import asyncio
import email
import socket

from audit.detectors.config import SmtpConfig
from audit.notify import EmailNotifier


class SmtpSink:
    """Just enough SMTP (RFC 5321) to accept messages and keep them."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 sink ready\r\n")
        while line := await reader.readline():
            command = line.decode().strip().upper()
            if command == "DATA":
                writer.write(b"354 end with <CRLF>.<CRLF>\r\n")
                await writer.drain()
                self.messages.append(await reader.readuntil(b"\r\n.\r\n"))
                writer.write(b"250 queued\r\n")
            elif command == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:  # EHLO, MAIL FROM, RCPT TO
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()


ALERT = {
    "id": "a1",
    "detector": "volume",
    "subject": "sales07",
    "severity": "high",
    "explanation": "sales07 read 3,180 customer records in 42 minutes",
}


async def test_alert_email_is_sent() -> None:
    sink = SmtpSink()
    server = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = SmtpConfig(
        host="127.0.0.1",
        port=port,
        sender="wardgate@example.com",
        recipients=["soc@example.com", "ciso@example.com"],
    )
    async with server:
        await EmailNotifier(config).notify(ALERT)
    assert len(sink.messages) == 1
    message = email.message_from_bytes(sink.messages[0])
    assert message["To"] == "soc@example.com, ciso@example.com"
    assert message["Subject"] == "[Wardgate high] volume: sales07"
    assert "3,180 customer records" in message.get_payload()


async def test_unreachable_mail_server_is_logged_not_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    config = SmtpConfig(host="127.0.0.1", port=closed_port, sender="w@x", recipients=["s@x"])
    await EmailNotifier(config).notify(ALERT)  # must not raise: alerts keep flowing
