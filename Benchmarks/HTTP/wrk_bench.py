#!/usr/bin/env python3
"""The HTTP benchmark: wrk against the same routes on three servers, each its own process.

Contenders (`--server ID=PATH`, in the order given): Examples/HTTPServer (FastStreams), a minimal
NIOHTTP1 server (Sources/NIOHTTP1Bench) and Hummingbird 2 (Sources/HummingbirdBench). They take
the same command line (`--host --port --loops [--tls-cert --tls-key]`) and print `listening on
HOST:PORT` once ready.

Cells: route (/plaintext, /json) x keep-alive connections (1, 64, 256) x server threads (1, 2) x
HTTP / HTTPS. For each contender, threads and transport one server process is started, warmed up
with a short wrk run, then measured with `wrk --latency` once per route and connection count.
Reported per cell: requests/s, latency p50 and p99 (wrk's), and the server's CPU seconds (user +
system, every thread, from /proc/PID/stat around the measured run) per 100,000 requests.

Before measuring, every contender's /plaintext and /json answers are checked byte for byte, and a
cell fails on any wrk socket error or non-2xx answer (the run then exits non-zero).

Pinning (the benchmark machine has 2 cores): with 1 server thread the server runs on CPU 0 and wrk
(one thread) on CPU 1; with 2 server threads neither is pinned and wrk runs 2 threads, so server
and load generator share both cores and the figures say less. wrk's TLS is OpenSSL; its TLS 1.3
suite is fixed to TLS_AES_128_GCM_SHA256 through OPENSSL_CONF (Python/tls13.cnf), so the OpenSSL
(FastStreams) and BoringSSL (NIOSSL) servers encrypt with the same cipher.
"""
import argparse
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED = {"/plaintext": b"Hello, World!", "/json": b'{"message":"Hello, World!"}'}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", action="append", default=[], help="ID=PATH of a server executable (repeatable)")
    p.add_argument("--cert", help="PEM certificate for the HTTPS cells")
    p.add_argument("--key", help="PEM key for the HTTPS cells")
    p.add_argument("--output", required=True, help="folder for http-benchmarks.{md,json,png}")
    p.add_argument("--seconds", type=float, default=10, help="measured seconds per cell")
    p.add_argument("--warmup", type=float, default=2, help="warm-up seconds per server process")
    p.add_argument("--quick", action="store_true", help="smoke test: /plaintext and /json at 1 and 64 connections, 1 thread, 2 s cells")
    p.add_argument("--routes", default="/plaintext,/json")
    p.add_argument("--connections", default="1,64,256")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--transports", default="http,https")
    p.add_argument("--report-only", metavar="JSON", help="rewrite the report and chart from a saved http-benchmarks.json")
    p.add_argument("--note", default="", help="a line for the report (e.g. how loaded the machine was)")
    a = p.parse_args()
    if a.quick:
        a.seconds, a.warmup, a.connections, a.threads = 2, 1, "1,64", "1"
    return a


def cpu_seconds(pid):
    """User + system CPU of every thread of `pid` so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, path, threads, tls, args):
        command = [path, "--host", "127.0.0.1", "--port", "0", "--loops", str(threads)]
        if tls:
            command += ["--tls-cert", args.cert, "--tls-key", args.key]
        if threads == 1:
            command = ["taskset", "-c", "0"] + command
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            match = re.match(r"listening on .*:(\d+)$", line.strip())
            if match:
                self.port = int(match.group(1))
                break
        if self.port is None:
            self.stop()
            raise RuntimeError(f"{path} did not print 'listening on' (exit {self.process.poll()})")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def check_answers(port, tls):
    """GETs every route on one keep-alive connection; raises unless each body is exact."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(sock)
    with sock:
        for path, body in EXPECTED.items():
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                received = sock.recv(65536)
                if not received:
                    raise RuntimeError(f"{path}: connection closed")
                data += received
            head, rest = data.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
            while len(rest) < length:
                received = sock.recv(65536)
                if not received:
                    raise RuntimeError(f"{path}: connection closed in the body")
                rest += received
            if not head.startswith(b"HTTP/1.1 200") or rest != body:
                raise RuntimeError(f"{path}: got {head[:40]!r} {rest[:80]!r}")


def to_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url, connections, seconds, server_threads):
    threads = 1 if server_threads == 1 or connections == 1 else 2
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--latency", url]
    if server_threads == 1:
        command = ["taskset", "-c", "1"] + command
    env = dict(os.environ, OPENSSL_CONF=os.path.join(HERE, "..", "Python", "tls13.cnf"))
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60).stdout
    result = {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50ms": to_ms(re.search(r"\n\s+50%\s+(\S+)", out).group(1)),
        "p99ms": to_ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1)),
    }
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = sum(int(x) for x in errors.groups()) if errors else 0
    result["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    return result, out


def main():
    args = parse_args()
    if args.report_only:
        with open(args.report_only) as f:
            saved = json.load(f)
        args.seconds, args.note = saved["meta"]["seconds"], args.note or saved["meta"].get("note", "")
        args.date = saved["meta"]["date"]
        write_report(args, saved["contenders"], saved["results"], saved["failures"])
        return 0
    servers = [s.split("=", 1) for s in args.server]
    routes = args.routes.split(",")
    connection_counts = [int(c) for c in args.connections.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]
    transports = args.transports.split(",")
    results, failures = [], []
    for transport in transports:
        for threads in thread_counts:
            for contender, path in servers:
                label = f"{contender} {transport} {threads} thread(s)"
                try:
                    server = Server(path, threads, transport == "https", args)
                except Exception as error:
                    failures.append(f"{label}: {error}")
                    print(f"FAILED {label}: {error}", file=sys.stderr)
                    continue
                try:
                    check_answers(server.port, transport == "https")
                    base = f"{transport}://127.0.0.1:{server.port}"
                    run_wrk(base + routes[0], max(connection_counts), args.warmup, threads)
                    for route in routes:
                        for connections in connection_counts:
                            before = cpu_seconds(server.process.pid)
                            cell, raw = run_wrk(base + route, connections, args.seconds, threads)
                            cpu = cpu_seconds(server.process.pid) - before
                            cell.update(contender=contender, transport=transport, threads=threads, route=route,
                                        connections=connections,
                                        cpuSecondsPer100k=cpu / cell["requests"] * 100_000 if cell["requests"] else None)
                            results.append(cell)
                            print(f"{contender:12} {transport:5} t={threads} {route:10} c={connections:3}: "
                                  f"{cell['rps']:10.0f} req/s  p50 {cell['p50ms']:7.2f} ms  p99 {cell['p99ms']:7.2f} ms  "
                                  f"CPU {cell['cpuSecondsPer100k'] or 0:.2f} s/100k", file=sys.stderr)
                            if cell["errors"] or cell["non2xx"] or cell["requests"] == 0:
                                failures.append(f"{label} {route} c={connections}: {cell['errors']} socket errors, "
                                                f"{cell['non2xx']} non-2xx, {cell['requests']} requests\n{raw}")
                except Exception as error:
                    failures.append(f"{label}: {error}")
                    print(f"FAILED {label}: {error}", file=sys.stderr)
                finally:
                    server.stop()
    write_report(args, [c for c, _ in servers], results, failures)
    for failure in failures:
        print("FAILED", failure, file=sys.stderr)
    return 1 if failures else 0


def write_report(args, contenders, results, failures):
    os.makedirs(args.output, exist_ok=True)
    meta = {
        "seconds": args.seconds, "quick": args.quick, "cores": os.cpu_count(),
        "date": getattr(args, "date", None) or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0].split(" Copyright")[0].strip(),
        "note": args.note,
        "pinning": "1 server thread: server on CPU 0, wrk (1 thread) on CPU 1; 2 server threads: unpinned, wrk 2 threads",
    }
    with open(os.path.join(args.output, "http-benchmarks.json"), "w") as f:
        json.dump({"meta": meta, "contenders": contenders, "results": results, "failures": failures}, f, indent=1)

    def cell_key(r):
        return (r["transport"], r["threads"], r["route"], r["connections"])
    keys = sorted({cell_key(r) for r in results}, key=lambda k: (k[0], k[1], k[2] != "/plaintext", k[2], k[3]))
    by = {(cell_key(r), r["contender"]): r for r in results}
    lines = [
        "# HTTP benchmark: wrk against FastStreams' HTTPServer, NIOHTTP1 and Hummingbird 2", "",
        f"{meta['date']}, {meta['cores']} cores, {meta['wrk']}, {args.seconds:g} s per cell after a warm-up; "
        f"keep-alive connections; {meta['pinning']}. Made by `Benchmarks/HTTP/run.sh` (see Benchmarks/README.md).", "",
    ] + ([f"**{args.note}**", ""] if args.note else []) + [
        "Each cell: requests/s · latency p50 / p99 (ms) · server CPU seconds (user + system) per 100,000 requests.", "",
        "| transport | threads | route | conns | " + " | ".join(contenders) + " |",
        "|---|---|---|---|" + "---|" * len(contenders),
    ]
    for key in keys:
        row = []
        for contender in contenders:
            r = by.get((key, contender))
            row.append("failed" if r is None or not r["requests"] else
                       f"{r['rps']:,.0f} · {r['p50ms']:.2f} / {r['p99ms']:.2f} · {r['cpuSecondsPer100k']:.2f} s")
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | " + " | ".join(row) + " |")
    if failures:
        lines += ["", "Failures:", ""] + [f"- {f.splitlines()[0]}" for f in failures]
    with open(os.path.join(args.output, "http-benchmarks.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    write_chart(args.output, contenders, keys, by)


def write_chart(output, contenders, keys, by):
    """Two panels (requests/s, CPU s per 100k requests), a bar per contender per cell; needs gnuplot."""
    if not keys or subprocess.run(["sh", "-c", "command -v gnuplot"], capture_output=True).returncode != 0:
        return
    data = os.path.join(output, ".http-benchmarks.dat")
    with open(data, "w") as f:
        for key in keys:
            label = f"{key[0]} t{key[1]} {key[2].strip('/')} c{key[3]}"
            values = []
            for contender in contenders:
                r = by.get((key, contender))
                values.append(f"{r['rps']:.0f} {r['cpuSecondsPer100k']:.3f}" if r and r["requests"] else "NaN NaN")
            f.write(f'"{label}" ' + " ".join(values) + "\n")
    plots_rps = ", ".join(f"'{data}' using {2 + 2 * i}:xtic(1) title '{c}'" for i, c in enumerate(contenders))
    plots_cpu = ", ".join(f"'{data}' using {3 + 2 * i}:xtic(1) title '{c}'" for i, c in enumerate(contenders))
    script = f"""
set terminal pngcairo size {max(1000, 60 * len(keys))},900 font ',9'
set output '{os.path.join(output, "http-benchmarks.png")}'
set multiplot layout 2,1
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set key top left horizontal
set xtics rotate by -45 scale 0
set grid ytics
set title 'HTTP keep-alive: requests/s (higher is better)'
plot {plots_rps}
set title 'Server CPU seconds per 100,000 requests (lower is better)'
plot {plots_cpu}
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=False)
    os.unlink(data)


if __name__ == "__main__":
    sys.exit(main())
