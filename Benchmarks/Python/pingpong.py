#!/usr/bin/env python3
"""Ping-pong child process of the FastStreams benchmark: aiofastnet's transports on uvloop.

Set up as aiofastnet's own benchmark (examples/benchmark.py): one uvloop loop runs both the echo
server and the client; servers and connections come from aiofastnet.create_server /
aiofastnet.create_connection; both protocols are aiofastnet.Protocol + asyncio.BufferedProtocol
and write with Transport.write_nocheck. One connection, strict ping-pong: the client sends N bytes,
waits until all N came back, repeats. Unlike that benchmark, the client verifies the server
certificate (chain and IP address against --cert) and compares every echoed byte with what it
sent.

Driven over stdin/stdout in lines by the harness (Sources/FastStreamsBench/Contenders/
PythonContender.swift):
  -> READY               connected (handshake done) and ping-ponging
  <- ROUNDS  -> ROUNDS n u s  completed round trips so far, and the user and system CPU seconds
                           this process spent so far (getrusage RUSAGE_SELF)
  <- STOP    -> STOPPED m  after finishing the current round and closing cleanly; m = echoed
                           chunks that differed from what was sent
  <- QUIT or end of input: exits (0, or 1 after an ERROR)
Any failure prints "ERROR <text>" and exits 1 once told to. The child exits only on QUIT or the end
of its input (or 5 minutes after STOPPED/ERROR), so that the harness never writes to a dead pipe.
"""

import argparse
import os
import resource
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
READ_BUFFER = 262144  # as aiofastnet's benchmark protocols


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, required=True, help="bytes per round trip")
    p.add_argument("--transport", choices=["tcp", "tls12", "tls13"], default="tcp")
    p.add_argument("--cert", help="PEM certificate (server chain; the client's only trust anchor)")
    p.add_argument("--key", help="PEM private key of --cert")
    p.add_argument("--sndbuf", type=int, default=0, help="SO_SNDBUF for both ends (0: kernel default)")
    p.add_argument("--period", type=int, choices=[1, 251], default=1,
                   help="1: every byte 'x'; 251: stream byte k is k %% 251")
    args = p.parse_args()
    if args.size <= 0:
        p.error("--size must be > 0")
    if args.transport != "tcp" and not (args.cert and args.key):
        p.error("TLS needs --cert and --key")
    return args


def say(line):
    os.write(1, (line + "\n").encode())


def exit_when_told(code):
    """Exits once the harness says QUIT or closes stdin (at most 5 minutes from now).

    The child never exits on its own: the harness writes to its stdin with FileHandle.write, which
    traps on a closed pipe, so the pipe must stay open until the harness is done with it.
    """
    import select
    import time
    os.set_blocking(0, True)
    deadline = time.monotonic() + 300
    pending = b""
    while True:
        ready, _, _ = select.select([0], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        data = os.read(0, 4096)
        if not data:
            break
        pending += data
        if b"\nQUIT\n" in b"\n" + pending:
            break
    os._exit(code)


def fail(message):
    say("ERROR " + " ".join(str(message).split()))
    exit_when_told(1)


ARGS = parse_args()
if ARGS.transport == "tls13":
    # Must be in place before OpenSSL initialises (the first import of ssl): see tls13.cnf.
    os.environ["OPENSSL_CONF"] = os.path.join(HERE, "tls13.cnf")

import asyncio  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402

try:
    import aiofastnet  # noqa: E402
    import uvloop  # noqa: E402
except ImportError as e:
    fail(f"{e} (run Benchmarks/run.sh to create Benchmarks/.build/python-venv)")

TLS12_CIPHER = "ECDHE-RSA-AES128-GCM-SHA256"
TLS13_SUITE = "TLS_AES_128_GCM_SHA256"


def ssl_contexts(args):
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certfile=args.cert, keyfile=args.key)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.cert)
    # create_default_context: CERT_REQUIRED and check_hostname (the IP address 127.0.0.1 here).
    version = ssl.TLSVersion.TLSv1_2 if args.transport == "tls12" else ssl.TLSVersion.TLSv1_3
    for ctx in (server, client):
        ctx.minimum_version = version
        ctx.maximum_version = version
        if args.transport == "tls12":
            ctx.set_ciphers(TLS12_CIPHER)
    return server, client


def set_sndbuf(sock, size):
    if size > 0 and sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


class EchoServer(aiofastnet.Protocol, asyncio.BufferedProtocol):
    """Echoes every read at once from one reusable buffer (aiofastnet copies it if it must queue)."""

    def __init__(self, bench):
        self.bench = bench
        self.transport = None
        self.buf = bytearray(READ_BUFFER)
        self.view = memoryview(self.buf)

    def connection_made(self, transport):
        self.transport = transport
        self.bench.server_connected(transport)

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.transport.write_nocheck(self.view[:nbytes])

    def eof_received(self):
        return False  # close our end too

    def connection_lost(self, exc):
        self.bench.server_lost(exc)


class PingPongClient(aiofastnet.Protocol, asyncio.BufferedProtocol):
    """Sends `size` bytes, waits for all of them, compares them with what it sent, repeats."""

    def __init__(self, bench, size, period):
        self.bench = bench
        self.size = size
        self.period = period
        # Stream byte k is pattern[k % period]; any `size` bytes from offset k are one slice.
        if period == 1:
            self.pattern = b"x" * (period + size)
        else:
            self.pattern = bytes(i % period for i in range(period + size))
        self.pattern_view = memoryview(self.pattern)  # slices stay backed by bytes: never copied
        self.buf = bytearray(READ_BUFFER)
        self.view = memoryview(self.buf)
        self.transport = None
        self.offset = 0  # stream offset of the next byte to receive
        self.outstanding = 0
        self.rounds = 0
        self.mismatches = 0
        self.stopping = False

    def connection_made(self, transport):
        self.transport = transport

    def send_round(self):
        start = self.offset % self.period
        self.outstanding = self.size
        self.transport.write_nocheck(self.pattern_view[start:start + self.size])

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        if nbytes > self.outstanding:
            fail(f"{nbytes} bytes came back with only {self.outstanding} outstanding")
        if not self.pattern.startswith(self.view[:nbytes], self.offset % self.period):
            self.mismatches += 1
        self.offset += nbytes
        self.outstanding -= nbytes
        if self.outstanding == 0:
            self.rounds += 1
            if self.stopping:
                self.bench.client_done()
            else:
                self.send_round()

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        self.bench.client_lost(exc)


class Bench:
    def __init__(self, args):
        self.args = args
        self.loop = asyncio.get_running_loop()
        self.server_transport = None
        self.server_ready = self.loop.create_future()
        self.server_closed = self.loop.create_future()
        self.client_closed = self.loop.create_future()
        self.finished = self.loop.create_future()
        self.closing = False
        self.running = False
        self.setup_errors = []
        self.client = None
        self.stdin_buffer = b""

    # Protocol callbacks.
    def server_connected(self, transport):
        self.server_transport = transport
        if not self.server_ready.done():
            self.server_ready.set_result(transport)

    def server_lost(self, exc):
        if not self.closing:
            fail(f"server connection lost before STOP: {exc!r}")
        if not self.server_closed.done():
            self.server_closed.set_result(exc)

    def client_lost(self, exc):
        if not self.closing:
            fail(f"client connection lost before STOP: {exc!r}")
        if not self.client_closed.done():
            self.client_closed.set_result(exc)

    def client_done(self):
        if not self.finished.done():
            self.finished.set_result(None)

    def on_exception(self, loop, context):
        message = f"{context.get('message')}: {context.get('exception')!r}"
        if self.running:
            fail(message)
        # During set-up the server side reports first (e.g. "handshake failed"); the client's own
        # exception (e.g. the certificate check) says more and ends set-up anyway.
        self.setup_errors.append(message)

    # Commands from the harness, read on the loop (non-blocking stdin with add_reader).
    def on_stdin(self):
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return
        if not data:
            os._exit(0)  # the harness went away
        self.stdin_buffer += data
        while b"\n" in self.stdin_buffer:
            line, self.stdin_buffer = self.stdin_buffer.split(b"\n", 1)
            command = line.decode().strip()
            if command == "ROUNDS":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                say(f"ROUNDS {self.client.rounds} {usage.ru_utime:.6f} {usage.ru_stime:.6f}")
            elif command == "STOP":
                self.client.stopping = True
            elif command == "QUIT":
                os._exit(0)
            elif command:
                fail(f"unknown command {command!r}")

    async def run(self):
        loop = self.loop
        loop.set_exception_handler(self.on_exception)
        args = self.args
        server_ssl = client_ssl = None
        if args.transport != "tcp":
            server_ssl, client_ssl = ssl_contexts(args)

        server = await aiofastnet.create_server(
            loop, lambda: EchoServer(self), host="127.0.0.1", port=0, ssl=server_ssl)
        for sock in server.sockets:
            set_sndbuf(sock, args.sndbuf)  # accepted sockets inherit it
        port = server.sockets[0].getsockname()[1]

        self.client = PingPongClient(self, args.size, args.period)
        transport, _ = await aiofastnet.create_connection(
            loop, lambda: self.client, host="127.0.0.1", port=port, ssl=client_ssl,
            server_hostname="127.0.0.1" if client_ssl is not None else None)
        set_sndbuf(transport.get_extra_info("socket"), args.sndbuf)
        server_transport = await asyncio.wait_for(self.server_ready, 10)

        # Make sure this really is aiofastnet (not the loop's own transports) and the asked-for TLS.
        for t in (transport, server_transport):
            if not isinstance(t, aiofastnet.Transport):
                fail(f"not an aiofastnet transport: {type(t).__name__}")
        if client_ssl is not None:
            want = (TLS12_CIPHER, "TLSv1.2") if args.transport == "tls12" else (TLS13_SUITE, "TLSv1.3")
            for side, t in (("client", transport), ("server", server_transport)):
                cipher = t.get_extra_info("cipher")
                if cipher is None or (cipher[0], cipher[1]) != want:
                    fail(f"{side} negotiated {cipher}, expected {want}")

        if self.setup_errors:
            fail(self.setup_errors[0])
        self.running = True
        self.client.send_round()
        os.set_blocking(0, False)
        loop.add_reader(0, self.on_stdin)
        say("READY")

        await self.finished
        loop.remove_reader(0)
        self.closing = True
        transport.close()
        try:
            await asyncio.wait_for(asyncio.gather(self.client_closed, self.server_closed), 10)
        except asyncio.TimeoutError:
            fail("the connection did not close within 10 s")
        server.close()
        await server.wait_closed()
        say(f"STOPPED {self.client.mismatches}")
        exit_when_told(0)


async def main(args):
    await Bench(args).run()


if __name__ == "__main__":
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main(ARGS))
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - every failure becomes an ERROR line
        fail(f"{type(e).__name__}: {e}")
    os._exit(0)
