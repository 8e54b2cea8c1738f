#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Linux-TCP client for the DPDK echo tests: opens N connections to HOST:PORT, sends SIZE
# pseudo-random bytes on each while reading the echo back, and checks it byte for byte.
# Prints one line per run with the aggregate throughput. Exit status 0 only if all match.
# Every wait is bounded (socket timeouts, a global deadline).
import random
import socket
import sys
import threading
import time


def run_one(host, port, size, seed, deadline, results, idx):
    data = random.Random(seed).randbytes(size)
    try:
        s = socket.create_connection((host, port), timeout=20)
        s.settimeout(20)
        err = []

        def sender():
            try:
                view = memoryview(data)
                off = 0
                while off < size and time.monotonic() < deadline:
                    n = s.send(view[off:off + 65536])
                    off += n
            except OSError as e:
                err.append(e)

        th = threading.Thread(target=sender)
        th.start()
        got = bytearray()
        while len(got) < size and time.monotonic() < deadline:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        th.join(timeout=max(1.0, deadline - time.monotonic()))
        s.close()
        if err:
            results[idx] = 'send error: %r' % err[0]
        elif bytes(got) != data:
            first = next((i for i in range(min(len(got), size)) if got[i] != data[i]),
                         min(len(got), size))
            results[idx] = 'mismatch: got %d of %d bytes, first difference at %d' % (
                len(got), size, first)
        else:
            results[idx] = None
    except OSError as e:
        results[idx] = 'error: %r' % e


def main():
    host, port, nconn, size, budget = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                       int(sys.argv[4]), float(sys.argv[5]))
    deadline = time.monotonic() + budget
    results = [Ellipsis] * nconn
    t0 = time.monotonic()
    threads = [threading.Thread(target=run_one,
                                args=(host, port, size, 1000 + i, deadline, results, i))
               for i in range(nconn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic() + 5))
    dt = time.monotonic() - t0
    bad = [(i, r) for i, r in enumerate(results) if r is not None]
    total = nconn * size
    print('echo %d conn x %d bytes: %.2f s, %.1f MB/s each way, %s' % (
        nconn, size, dt, total / dt / 1e6, 'OK' if not bad else 'FAILED'))
    for i, r in bad:
        print('  conn %d: %s' % (i, 'timed out' if r is Ellipsis else r))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
