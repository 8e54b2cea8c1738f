#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# MQTT client for dpdk_workers_test.sh: opens N MQTT 3.1.1 connections to HOST:PORT (raw
# sockets, Linux TCP), subscribes every one of them to a topic, publishes one QoS 1 message
# from one more connection, and checks that each subscriber gets it exactly once (so routing
# crosses the broker's workers), then disconnects all. Exit status 0 only if everything
# arrived. Every wait is bounded by socket timeouts and a global deadline.
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'engine'))
from broker import packet, s16  # noqa: E402  (the end-to-end tests' raw MQTT helpers)


def read_packet(s, deadline):
    """One MQTT packet: (first byte, body)."""
    def need(n):
        buf = b''
        while len(buf) < n:
            if time.monotonic() > deadline:
                raise TimeoutError('deadline')
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError('closed by the broker')
            buf += chunk
        return buf
    first = need(1)[0]
    mult, length = 1, 0
    while True:
        b = need(1)[0]
        length += (b & 0x7f) * mult
        mult *= 128
        if not b & 0x80:
            break
    return first, need(length)


def connect(host, port, cid, deadline):
    s = socket.create_connection((host, port), timeout=10)
    s.settimeout(10)
    s.sendall(packet(0x10, s16(b'MQTT') + bytes([4, 0x02]) + struct.pack('>H', 60)
                     + s16(cid)))
    first, body = read_packet(s, deadline)
    if first != 0x20 or body[1] != 0:
        raise RuntimeError('%s: CONNACK %r' % (cid, body))
    return s


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    deadline = time.monotonic() + 60
    topic = b'spread/t'
    subs = []
    for i in range(n):
        s = connect(host, port, 'spread-%d' % i, deadline)
        s.sendall(packet(0x82, struct.pack('>H', 1) + s16(topic) + bytes([1])))
        first, body = read_packet(s, deadline)
        if first != 0x90 or body[2] != 1:
            raise RuntimeError('SUBACK %r' % body)
        subs.append(s)
    pub = connect(host, port, 'spread-pub', deadline)
    pub.sendall(packet(0x32, s16(topic) + struct.pack('>H', 7) + b'hello'))
    first, body = read_packet(pub, deadline)
    if first != 0x40:
        raise RuntimeError('PUBACK %r' % body)
    got = 0
    for s in subs:
        first, body = read_packet(s, deadline)
        if first >> 4 != 3 or not body.endswith(b'hello'):
            raise RuntimeError('PUBLISH %r' % body)
        if first & 0x06:  # QoS 1: acknowledge
            pid = body[2 + len(topic):4 + len(topic)]
            s.sendall(packet(0x40, pid))
        got += 1
    for s in subs + [pub]:
        s.sendall(packet(0xe0, b''))
        s.close()
    print('%d subscribers on %d connections: %d got the message' % (n, n + 1, got))
    return 0 if got == n else 1


if __name__ == '__main__':
    sys.exit(main())
