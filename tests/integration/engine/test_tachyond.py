#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of tachyond with real clients (mosquitto_pub/sub, paho, raw sockets).

    test_tachyond.py TACHYOND GROUP

Groups (numbered by feature, like Mosquitto's conformance tests):
    01-connect     CONNECT/CONNACK in 3.1, 3.1.1 and 5.0, client id rules, version negotiation,
                   second CONNECT, CONNECT timeout, PINGREQ, keepalive, DISCONNECT, --help
    02-malformed   malformed and illegal packets close only the offending connection, with the
                   MQTT 5 reason code; other clients unaffected
    03-pubsub      QoS 0 routing across workers, wildcards, fan-out, order per publisher,
                   unsubscribe, mosquitto tools in both versions
    04-retained    set, replace, delete, Retain Handling 0/1/2, retain-as-published
    05-qos         QoS 1/2 both directions, QoS 2 deduplication, Receive Maximum (0x93),
                   the client's Receive Maximum as outbound window
    06-will        will on abnormal close, none on DISCONNECT, 0x04, Will Delay, will retain
    07-session     persistent sessions with queued messages, session expiry, takeover
                   across cores (0x8E), DUP resend, QoS 2 exactly once under reconnects
    08-props       MQTT 5 properties: user properties, content type, response topic,
                   correlation data, payload format, message expiry, subscription ids,
                   topic alias (inbound), no-local, maximum packet size
    09-shared      shared subscriptions across workers
    10-auth        password file (tachyon_passwd), anonymous off, ACL denials
    11-sys         $SYS topics
    12-signals     SIGHUP reload of the password file, SIGTERM graceful shutdown with wills
    13-plugin      plugin ABI: a test plugin loaded from the config file registers an ACL hook
                   and an enhanced authentication method; cleanup; the loader's error cases
    14-auththread  password checks run off the control thread: an anonymous CONNECT sent
                   after three password CONNECTs is answered before the last of them
    15-alias       outbound topic aliases: the wire carries topic + alias once, then the alias;
                   LRU rebinding; clients without Topic Alias Maximum and 3.x unaffected; a
                   new connection of the same session starts without aliases
    16-retry       retry_interval: MQTT 3.1/3.1.1 get unacknowledged QoS 1/2 PUBLISH (DUP) and
                   PUBREL again on the same connection; MQTT 5 never
    17-overload    qos0_overload pause (no loss to a slow subscriber, bounded broker memory, a
                   subscriber that never reads stops holding publishers back) and drop (counted)
    18-takeover    a persistent QoS 1 subscriber taken over again and again, across cores, while
                   a numbered QoS 1 stream runs: every acknowledged message arrives
Exit status: 0 passed, 1 failed, 77 skipped (a client tool is missing).
"""
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import broker as B  # noqa: E402

EXE = sys.argv[1]
GROUP = sys.argv[2]


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print('ok: ' + what, flush=True)


def connack_of(r):
    p = r.read()
    check(p not in (None, 'closed') and p[0] == 2, 'CONNACK received')
    return p


# -------------------------------------------------------------------------------------------------
def t01_connect():
    b = B.Broker(EXE, workers=2, conf={'connect_timeout': 1}).start()
    port = b.port
    # 3.1.1 accepted, session not present
    r = B.Raw(port)
    r.send(B.connect('c311', 4))
    check(r.read() == (2, 0, b'\x00\x00'), '3.1.1 CONNACK accepted')
    r.send(b'\xc0\x00')
    check(r.read() == (13, 0, b''), 'PINGREQ -> PINGRESP')
    r.send(b'\xe0\x00')
    check(r.closed(), 'DISCONNECT closes the connection')
    # 3.1 ("MQIsdp", level 3)
    r = B.Raw(port)
    r.send(B.connect('c31', 3))
    check(r.read() == (2, 0, b'\x00\x00'), '3.1 CONNACK accepted')
    r.close()
    # 3.1 empty client id: identifier rejected
    r = B.Raw(port)
    r.send(B.connect('', 3))
    check(r.read() == (2, 0, b'\x00\x02'), '3.1 empty client id -> 0x02')
    check(r.closed(), 'closed after refusal')
    # 3.1.1 empty id with clean session 0: 0x02; with clean session 1: accepted
    r = B.Raw(port)
    r.send(B.connect('', 4, clean=False))
    check(r.read() == (2, 0, b'\x00\x02'), '3.1.1 empty id, clean 0 -> 0x02')
    r = B.Raw(port)
    r.send(B.connect('', 4, clean=True))
    check(r.read() == (2, 0, b'\x00\x00'), '3.1.1 empty id, clean 1 accepted')
    r.close()
    # 5.0 empty id: assigned client identifier (property 0x12)
    r = B.Raw(port)
    r.send(B.connect('', 5))
    p = r.read()
    check(p[0] == 2 and p[2][1] == 0 and b'\x12\x00' in p[2], '5.0 empty id -> Assigned Client Identifier')
    r.close()
    # unsupported protocol level: 3.x CONNACK 0x01
    r = B.Raw(port)
    r.send(B.packet(0x10, B.s16('MQTT') + bytes([6, 2, 0, 60]) + B.s16('x')))
    p = r.read()
    check(p is not None and p != 'closed' and p[0] == 2 and p[2][1] in (0x01, 0x84),
          'unsupported protocol level refused (%r)' % (p,))
    check(r.closed(), 'closed after unsupported version')
    # second CONNECT is a protocol error: 3.1.1 closes, 5.0 DISCONNECT 0x82
    r = B.Raw(port)
    r.send(B.connect('twice4', 4))
    connack_of(r)
    r.send(B.connect('twice4', 4))
    check(r.closed(), '3.1.1 second CONNECT closes')
    r = B.Raw(port)
    r.send(B.connect('twice5', 5))
    connack_of(r)
    r.send(B.connect('twice5', 5))
    p = r.read()
    check(p == (14, 0, b'\x82\x00') or p == (14, 0, b'\x82'), '5.0 second CONNECT -> DISCONNECT 0x82 (%r)' % (p,))
    # CONNECT timeout: nothing sent, closed after ~1 s
    r = B.Raw(port)
    t0 = time.time()
    check(r.closed(timeout=4), 'no CONNECT: closed by the CONNECT timeout')
    check(0.8 <= time.time() - t0 <= 3.5, 'CONNECT timeout ~1 s (%.2f s)' % (time.time() - t0))
    # keepalive 1 s: closed after 1.5 s without traffic; MQTT 5 gets DISCONNECT 0x8D
    r = B.Raw(port)
    r.send(B.connect('ka', 5, keepalive=1))
    connack_of(r)
    t0 = time.time()
    p = r.read(timeout=4)
    check(p is not None and p != 'closed' and p[0] == 14 and p[2][0] == 0x8D,
          'keepalive expiry -> DISCONNECT 0x8D')
    check(1.2 <= time.time() - t0 <= 3.5, 'after ~1.5 x keepalive (%.2f s)' % (time.time() - t0))
    check(r.closed(), 'closed after keepalive expiry')
    # keepalive kept by PINGREQ
    r = B.Raw(port)
    r.send(B.connect('ka2', 4, keepalive=1))
    connack_of(r)
    for _ in range(4):
        time.sleep(0.6)
        r.send(b'\xc0\x00')
        check(r.read() == (13, 0, b''), 'PINGRESP keeps the connection alive')
    r.close()
    b.stop()
    # max_keepalive: Server Keep Alive in MQTT 5
    b = B.Broker(EXE, workers=1, conf={'max_keepalive': 30}).start()
    r = B.Raw(b.port)
    r.send(B.connect('ska', 5, keepalive=100))
    p = connack_of(r)
    check(b'\x13\x00\x1e' in p[2], 'Server Keep Alive 30 in CONNACK')
    r.close()
    b.stop()
    # --help and a bad flag
    out = subprocess.run([EXE, '--help'], capture_output=True, text=True, timeout=10)
    check(out.returncode == 0 and '--port' in out.stdout, '--help prints usage, exit 0')
    out = subprocess.run([EXE, '--bogus'], capture_output=True, text=True, timeout=10)
    check(out.returncode == 2, 'unknown flag: exit 2')
    out = subprocess.run([EXE, '--backend', 'dpdk', '--port', str(B.free_port())],
                         capture_output=True, text=True, timeout=20)
    check(out.returncode != 0 and out.stderr.strip() != '', '--backend dpdk without DPDK: clear error (%s)'
          % out.stderr.strip()[:120])
    cfg = B.tmpfile('bad.conf', 'port 1883\nmax_inflight lots\n')
    out = subprocess.run([EXE, '--config', cfg], capture_output=True, text=True, timeout=10)
    check(out.returncode == 2 and 'bad.conf:2' in out.stderr, 'config error names the line')


def t02_malformed():
    b = B.Broker(EXE, workers=2).start()
    port = b.port
    good = B.paho(port, 'bystander', version=5)
    B.paho_connect(good, port)
    good.subscribe('m/#', qos=1)
    time.sleep(0.3)
    # bad remaining length (5 continuation bytes): closed
    r = B.Raw(port)
    r.send(B.connect('bad1', 4))
    connack_of(r)
    r.send(b'\x30\xff\xff\xff\xff\x7f')
    check(r.closed(), 'malformed remaining length closes (3.1.1)')
    # MQTT 5: PUBLISH with QoS 3 -> DISCONNECT 0x81
    r = B.Raw(port)
    r.send(B.connect('bad2', 5))
    connack_of(r)
    r.send(B.packet(0x36, B.s16('m/x') + b'\x00\x01\x00'))
    p = r.read()
    check(p is not None and p != 'closed' and p[0] == 14 and p[2][0] == 0x81,
          'QoS 3 PUBLISH -> DISCONNECT 0x81 (%r)' % (p,))
    check(r.closed(), 'closed after DISCONNECT')
    # MQTT 5: wildcard in a PUBLISH topic -> 0x90? (codec: topic name invalid)
    r = B.Raw(port)
    r.send(B.connect('bad3', 5))
    connack_of(r)
    r.send(B.publish('m/+', 'x', version=5))
    p = r.read()
    check(p is not None and p != 'closed' and p[0] == 14 and p[2][0] in (0x90, 0x81, 0x82),
          'wildcard in topic name -> DISCONNECT %r' % (p and p != 'closed' and hex(p[2][0])))
    # a packet before CONNECT
    r = B.Raw(port)
    r.send(B.publish('m/x', 'x'))
    check(r.closed(), 'PUBLISH before CONNECT closes')
    # oversize packet (max_packet_size default 1 MiB): refused from its header
    r = B.Raw(port)
    r.send(B.connect('bad4', 5))
    connack_of(r)
    r.send(b'\x30' + B.vbi(2 * 1024 * 1024))
    p = r.read()
    check(p is not None and p != 'closed' and p[0] == 14 and p[2][0] == 0x95,
          'oversize packet -> DISCONNECT 0x95')
    # invalid UTF-8 in a topic
    r = B.Raw(port)
    r.send(B.connect('bad5', 4))
    connack_of(r)
    r.send(B.packet(0x30, b'\x00\x02\xc3\x28x'))
    check(r.closed(), 'invalid UTF-8 topic closes')
    # the bystander still works
    pub = B.paho(port, 'pub-after', version=5)
    B.paho_connect(pub, port)
    pub.publish('m/ok', b'still fine', qos=1).wait_for_publish(5)
    B.wait_for(lambda: any(m.topic == 'm/ok' for m in good.got), 5, 'bystander message')
    check(True, 'other clients unaffected')
    good.disconnect()
    pub.disconnect()
    good.loop_stop()
    pub.loop_stop()
    out = b.output()
    check('bad2' in out and 'Malformed' in out, 'protocol errors are logged with the client id')
    b.stop()


def t03_pubsub():
    b = B.Broker(EXE, workers=2).start()
    port = b.port
    subs = [B.mosq_sub(port, 'p/#', 3, version=v) for v in ('mqttv311', 'mqttv5', 'mqttv31')]
    subs.append(B.mosq_sub(port, 'p/+/x', 2, version='mqttv5'))
    time.sleep(0.8)
    B.mosq_pub(port, 'p/a/x', 'one', version='mqttv311')
    B.mosq_pub(port, 'p/b/x', 'two', version='mqttv5')
    B.mosq_pub(port, 'p/c', 'three', version='mqttv31')
    outs = [s.communicate(timeout=15)[0] for s in subs]
    for o in outs[:3]:
        check(o.split('\n')[:3] == ['p/a/x one', 'p/b/x two', 'p/c three'],
              'wildcard subscriber got all three in order (%r)' % o)
    check(outs[3].split('\n')[:2] == ['p/a/x one', 'p/b/x two'], '+ filter got two')
    # fan-out across workers with many subscribers, order per publisher
    n_sub, n_msg = 12, 200
    clients = []
    for i in range(n_sub):
        c = B.paho(port, 'fan%d' % i, version=5 if i % 2 else 4)
        B.paho_connect(c, port, version=5 if i % 2 else 4)
        c.subscribe('fan/t', qos=0)
        clients.append(c)
    time.sleep(0.5)
    r = B.Raw(port)
    r.send(B.connect('fanpub', 4))
    connack_of(r)
    r.send(b''.join(B.publish('fan/t', str(i)) for i in range(n_msg)))
    for c in clients:
        B.wait_for(lambda: len(c.got) >= n_msg, 10, 'fan-out deliveries')
        check([int(m.payload) for m in c.got] == list(range(n_msg)),
              'subscriber %s got %d messages in publisher order' % (c._client_id.decode(), n_msg))
    # unsubscribe stops delivery
    c0 = clients[0]
    c0.unsubscribe('fan/t')
    time.sleep(0.4)
    before = len(c0.got)
    r.send(B.publish('fan/t', 'after'))
    B.wait_for(lambda: len(clients[1].got) > n_msg, 5, 'post-unsubscribe message to others')
    time.sleep(0.2)
    check(len(c0.got) == before, 'no delivery after UNSUBSCRIBE')
    # packets straddling reads: a publisher dribbles its bytes in 1..7-byte writes, with
    # payloads from 1 B to past two doublings of the 2 KiB receive-tail buffer
    sizes = [1, 100, 2000, 2047, 2048, 2049, 5000, 9000, 3]
    r2 = B.Raw(port)
    r2.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream = B.connect('dribbler', 4) + b''.join(
        B.publish('fan/t', bytes([48 + i % 10]) * n) for i, n in enumerate(sizes))
    rnd = __import__('random').Random(7)
    off = 0
    while off < len(stream):
        k = rnd.randint(1, 7) if off < 400 or rnd.random() < 0.2 else rnd.randint(200, 1500)
        r2.send(stream[off:off + k])
        off += k
        time.sleep(0.0005 if k < 8 else 0)
    c1 = clients[1]
    B.wait_for(lambda: len(c1.got) >= n_msg + 1 + len(sizes), 15, 'dribbled publishes')
    got = [m.payload for m in c1.got[n_msg + 1:]]
    check(got == [bytes([48 + i % 10]) * n for i, n in enumerate(sizes)],
          'publishes written in pieces arrive whole and in order (%s)' % [len(g) for g in got])
    r2.close()
    # $-topics do not match wildcard-first filters
    for c in clients:
        c.disconnect()
        c.loop_stop()
    r.close()
    b.stop()


def t04_retained():
    b = B.Broker(EXE, workers=2, conf={'sys_interval': 0}).start()
    port = b.port
    B.mosq_pub(port, 'ret/a', 'first', extra=['-r'])
    B.mosq_pub(port, 'ret/a', 'second', extra=['-r'])
    B.mosq_pub(port, 'ret/b', 'bee', extra=['-r'], qos=1)
    B.mosq_pub(port, 'ret/c', 'gone', extra=['-r'])
    B.mosq_pub(port, 'ret/c', '', extra=['-r', '-n'] if False else ['-r'])
    s = B.mosq_sub(port, 'ret/#', 2, extra=['--retained-only'], timeout=5)
    out = s.communicate(timeout=10)[0]
    check(sorted(out.split('\n')[:2]) == ['ret/a second', 'ret/b bee'],
          'retained: replaced, and deleted by an empty payload (%r)' % out)
    # Retain Handling with paho 5
    import paho.mqtt.client as mqtt
    from paho.mqtt.subscribeoptions import SubscribeOptions
    c = B.paho(port, 'rh', version=5)
    B.paho_connect(c, port)
    c.subscribe('ret/a', options=SubscribeOptions(qos=1, retainHandling=0))
    B.wait_for(lambda: len(c.got) == 1, 5, 'retained on subscribe (RH 0)')
    check(c.got[0].retain and c.got[0].payload == b'second', 'RH 0: retained sent with RETAIN 1')
    c.subscribe('ret/a', options=SubscribeOptions(qos=1, retainHandling=1))
    time.sleep(0.5)
    check(len(c.got) == 1, 'RH 1: not sent again for an existing subscription')
    c.subscribe('ret/b', options=SubscribeOptions(qos=1, retainHandling=2))
    time.sleep(0.5)
    check(len(c.got) == 1, 'RH 2: never sent')
    c.subscribe('ret/#', options=SubscribeOptions(qos=1, retainHandling=1))
    B.wait_for(lambda: len(c.got) == 3, 5, 'RH 1 on a new subscription')
    # retain as published
    d = B.paho(port, 'rap', version=5)
    B.paho_connect(d, port)
    d.subscribe('rap/#', options=SubscribeOptions(qos=0, retainAsPublished=True))
    e = B.paho(port, 'norap', version=5)
    B.paho_connect(e, port)
    e.subscribe('rap/#', options=SubscribeOptions(qos=0))
    time.sleep(0.4)
    B.mosq_pub(port, 'rap/x', 'live', extra=['-r'])
    B.wait_for(lambda: d.got and e.got, 5, 'live retained message')
    check(d.got[0].retain and not e.got[0].retain, 'retain-as-published keeps RETAIN, others clear it')
    # message expiry honoured for stored retained messages
    p = B.paho(port, 'exp', version=5)
    B.paho_connect(p, port)
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
    pr = Properties(PacketTypes.PUBLISH)
    pr.MessageExpiryInterval = 1
    p.publish('retexp/x', b'short-lived', qos=1, retain=True, properties=pr).wait_for_publish(5)
    time.sleep(2.2)
    s = B.mosq_sub(port, 'retexp/#', 1, extra=['--retained-only'], timeout=2)
    out = s.communicate(timeout=10)[0]
    check(out.strip() == '', 'expired retained message not delivered')
    for x in (c, d, e, p):
        x.disconnect()
        x.loop_stop()
    b.stop()


def t05_qos():
    b = B.Broker(EXE, workers=2, conf={'receive_maximum': 3}).start()
    port = b.port
    # paho QoS 1 and 2 both directions, both versions
    for v in (4, 5):
        s = B.paho(port, 'qsub%d' % v, version=v)
        B.paho_connect(s, port, version=v)
        s.subscribe('q/#', qos=2)
        time.sleep(0.3)
        p = B.paho(port, 'qpub%d' % v, version=v)
        p.max_inflight_messages_set(3)  # paho 1.6 does not apply the server's Receive Maximum
        B.paho_connect(p, port, version=v)
        for i in range(50):
            p.publish('q/%d' % (i % 3), str(i).encode(), qos=1 + i % 2)
        B.wait_for(lambda: len(s.got) >= 50, 10, 'QoS 1/2 deliveries')
        time.sleep(0.3)
        check(sorted(int(m.payload) for m in s.got) == list(range(50)), 'v%d: 50 QoS 1/2 delivered exactly once' % v)
        check([m.qos for m in sorted(s.got, key=lambda m: int(m.payload))] == [1 + i % 2 for i in range(50)],
              'v%d: delivered QoS = min(published, granted)' % v)
        for x in (s, p):
            x.disconnect()
            x.loop_stop()
    # QoS 2 deduplication: the same packet id twice before PUBREL -> routed once
    s = B.paho(port, 'dedup-sub', version=4)
    B.paho_connect(s, port, version=4)
    s.subscribe('dd', qos=2)
    time.sleep(0.3)
    r = B.Raw(port)
    r.send(B.connect('dedup', 4))
    connack_of(r)
    r.send(B.publish('dd', 'once', qos=2, pid=7))
    check(r.read() == (5, 0, b'\x00\x07'), 'PUBREC for QoS 2')
    r.send(B.publish('dd', 'once', qos=2, pid=7, dup=True))
    check(r.read() == (5, 0, b'\x00\x07'), 'PUBREC again for the duplicate')
    r.send(B.ack('pubrel', 7))
    check(r.read() == (7, 0, b'\x00\x07'), 'PUBCOMP after PUBREL')
    time.sleep(0.5)
    check(len(s.got) == 1, 'QoS 2 duplicate not routed twice')
    r.send(B.publish('dd', 'again', qos=2, pid=7))
    check(r.read() == (5, 0, b'\x00\x07'), 'packet id reusable after PUBCOMP')
    r.send(B.ack('pubrel', 7))
    r.read()
    B.wait_for(lambda: len(s.got) == 2, 5, 'second message with the reused id')
    # PUBREL for an unknown id (MQTT 5): PUBCOMP 0x92
    r5 = B.Raw(port)
    r5.send(B.connect('rel5', 5))
    connack_of(r5)
    r5.send(B.ack('pubrel', 99, version=5, reason=0))
    p = r5.read()
    check(p[0] == 7 and p[2][:3] == b'\x00\x63\x92', 'PUBREL unknown id -> PUBCOMP 0x92')
    # our Receive Maximum (3): a 4th unreleased QoS 2 -> DISCONNECT 0x93
    for i in range(1, 4):
        r5.send(B.publish('rm', 'x', qos=2, pid=i, version=5))
        p = r5.read()
        check(p[0] == 5, 'PUBREC %d' % i)
    r5.send(B.publish('rm', 'x', qos=2, pid=4, version=5))
    p = r5.read()
    check(p is not None and p != 'closed' and p[0] == 14 and p[2][0] == 0x93,
          'over Receive Maximum -> DISCONNECT 0x93')
    # the client's Receive Maximum bounds our outbound window
    rs = B.Raw(port)
    rs.send(B.connect('window', 5, cprops=b'\x21\x00\x02'))
    connack_of(rs)
    rs.send(B.subscribe(1, [('win', 1)], version=5))
    check(rs.read()[0] == 9, 'SUBACK')
    for i in range(5):
        r.send(B.publish('win', str(i), qos=1, pid=100 + i))
    got = []
    while True:
        p = rs.read(timeout=1.0)
        if p is None:
            break
        if p[0] == 3:
            got.append(B.parse_publish(p[1], p[2], 5))
    check(len(got) == 2, 'only Receive Maximum (2) messages inflight (%d)' % len(got))
    rs.send(B.ack('puback', got[0]['pid']))
    p = rs.read(timeout=2)
    check(p and p != 'closed' and p[0] == 3 and B.parse_publish(p[1], p[2], 5)['payload'] == b'2',
          'next message after PUBACK')
    r.close()
    rs.close()
    s.disconnect()
    s.loop_stop()
    b.stop()


def t06_will():
    b = B.Broker(EXE, workers=2).start()
    port = b.port
    w = B.paho(port, 'will-watch', version=5)
    B.paho_connect(w, port)
    w.subscribe('will/#', qos=1)
    time.sleep(0.3)
    # abnormal close -> will
    r = B.Raw(port)
    r.send(B.connect('dies', 4, will=('will/dies', 'gone', 1, False)))
    connack_of(r)
    r.close()
    B.wait_for(lambda: any(m.topic == 'will/dies' for m in w.got), 5, 'will on abnormal close')
    check(True, 'will published on abnormal close')
    # normal DISCONNECT -> no will
    r = B.Raw(port)
    r.send(B.connect('polite', 4, will=('will/polite', 'no', 0, False)))
    connack_of(r)
    r.send(b'\xe0\x00')
    r.closed()
    # MQTT 5 DISCONNECT 0x04 -> will
    r = B.Raw(port)
    r.send(B.connect('withwill', 5, will=('will/0x04', 'yes', 0, False)))
    connack_of(r)
    r.send(B.packet(0xe0, b'\x04\x00'))
    B.wait_for(lambda: any(m.topic == 'will/0x04' for m in w.got), 5, 'will on DISCONNECT 0x04')
    time.sleep(0.3)
    check(not any(m.topic == 'will/polite' for m in w.got), 'no will after a normal DISCONNECT')
    # Will Delay 2 s with session expiry 10 s: published ~2 s after the close
    r = B.Raw(port)
    r.send(B.connect('delayed', 5, will=('will/delayed', 'late', 0, False),
                     cprops=b'\x11\x00\x00\x00\x0a', wprops=b'\x18\x00\x00\x00\x02'))
    connack_of(r)
    t0 = time.time()
    r.close()
    B.wait_for(lambda: any(m.topic == 'will/delayed' for m in w.got), 6, 'delayed will')
    dt = time.time() - t0
    check(1.7 <= dt <= 4.5, 'will delayed ~2 s (%.2f s)' % dt)
    # Will Delay cancelled by a reconnect within the delay
    r = B.Raw(port)
    r.send(B.connect('back', 5, clean=False, will=('will/back', 'x', 0, False),
                     cprops=b'\x11\x00\x00\x00\x0a', wprops=b'\x18\x00\x00\x00\x02'))
    connack_of(r)
    r.close()
    time.sleep(0.3)
    r = B.Raw(port)
    r.send(B.connect('back', 5, clean=False, cprops=b'\x11\x00\x00\x00\x0a'))
    p = connack_of(r)
    check(p[2][0] == 1, 'session present on return')
    time.sleep(2.5)
    check(not any(m.topic == 'will/back' for m in w.got), 'no will when the session resumed within the delay')
    r.close()
    # will retain + QoS
    r = B.Raw(port)
    r.send(B.connect('retwill', 4, will=('will/retained', 'kept', 1, True)))
    connack_of(r)
    r.close()
    time.sleep(0.5)
    s = B.mosq_sub(port, 'will/retained', 1, qos=1, extra=['--retained-only'], timeout=5)
    out = s.communicate(timeout=10)[0]
    check(out.strip() == 'will/retained kept', 'will retain stores the will as retained')
    w.disconnect()
    w.loop_stop()
    b.stop()


def t07_session():
    b = B.Broker(EXE, workers=2).start()
    port = b.port
    # 3.1.1 persistent session: subscription and queued QoS 1 messages survive
    s = B.paho(port, 'persist', version=4, clean=False)
    B.paho_connect(s, port, version=4)
    s.subscribe('ps/#', qos=1)
    time.sleep(0.3)
    s.disconnect()
    s.loop_stop()
    time.sleep(0.3)
    for i in range(5):
        B.mosq_pub(port, 'ps/x', 'q%d' % i, qos=1)
    B.mosq_pub(port, 'ps/x', 'dropped-qos0', qos=0)
    s = B.paho(port, 'persist', version=4, clean=False)
    B.paho_connect(s, port, version=4)
    check(s.connack[0].get('session present') == 1, 'session present on reconnect')
    B.wait_for(lambda: len(s.got) >= 5, 5, 'queued messages')
    time.sleep(0.3)
    check([m.payload.decode() for m in s.got] == ['q%d' % i for i in range(5)],
          'queued QoS 1 delivered in order, QoS 0 not queued offline')
    s.disconnect()
    s.loop_stop()
    # clean session discards it
    s = B.paho(port, 'persist', version=4, clean=True)
    B.paho_connect(s, port, version=4)
    check(s.connack[0].get('session present') == 0, 'clean session: no session present')
    s.disconnect()
    s.loop_stop()
    # MQTT 5 session expiry 1 s: gone after 2 s
    r = B.Raw(port)
    r.send(B.connect('exp5', 5, clean=True, cprops=b'\x11\x00\x00\x00\x01'))
    connack_of(r)
    r.send(b'\xe0\x00')
    r.closed()
    time.sleep(2.2)
    r = B.Raw(port)
    r.send(B.connect('exp5', 5, clean=False, cprops=b'\x11\x00\x00\x00\x01'))
    p = connack_of(r)
    check(p[2][0] == 0, 'session expired after its interval')
    r.close()
    # takeover across cores: connect the same id many times; each time the old connection
    # gets DISCONNECT 0x8E (MQTT 5) and the session moves with its subscription
    conns = []
    for i in range(6):
        r = B.Raw(port)
        r.send(B.connect('mover', 5, clean=(i == 0), cprops=b'\x11\x00\x00\x01\x00'))
        p = connack_of(r)
        if i == 0:
            r.send(B.subscribe(1, [('mv/#', 1)], version=5))
            check(r.read()[0] == 9, 'SUBACK')
        else:
            check(p[2][0] == 1, 'takeover %d: session present' % i)
            old = conns[-1]
            q = old.read()
            check(q is not None and q != 'closed' and q[0] == 14 and q[2][0] == 0x8E,
                  'takeover %d: old connection gets DISCONNECT 0x8E' % i)
        conns.append(r)
    B.mosq_pub(port, 'mv/x', 'moved', qos=1)
    p = conns[-1].read()
    check(p and p != 'closed' and p[0] == 3 and B.parse_publish(p[1], p[2], 5)['payload'] == b'moved',
          'subscription followed the session')
    conns[-1].send(B.ack('puback', B.parse_publish(p[1], p[2], 5)['pid']))
    out = b.output()
    check(out.count('taken over') >= 5, 'takeovers logged')
    # DUP resend of an unacknowledged message on resume
    r = B.Raw(port)
    r.send(B.connect('duper', 4, clean=False))
    connack_of(r)
    r.send(B.subscribe(1, [('dup/x', 2)]))
    r.read()
    B.mosq_pub(port, 'dup/x', 'exactly-once', qos=2)
    p = r.read()
    first = B.parse_publish(p[1], p[2])
    check(first['qos'] == 2 and not first['dup'], 'QoS 2 delivered')
    r.close()  # no PUBREC
    time.sleep(0.3)
    r = B.Raw(port)
    r.send(B.connect('duper', 4, clean=False))
    connack_of(r)
    p = r.read()
    again = B.parse_publish(p[1], p[2])
    check(again['dup'] and again['pid'] == first['pid'] and again['payload'] == b'exactly-once',
          'resent with DUP and the same packet id')
    r.send(B.ack('pubrec', again['pid']))
    check(r.read() == (6, 2, struct.pack('>H', again['pid'])), 'PUBREL after PUBREC')
    r.close()  # no PUBCOMP
    time.sleep(0.3)
    r = B.Raw(port)
    r.send(B.connect('duper', 4, clean=False))
    connack_of(r)
    check(r.read() == (6, 2, struct.pack('>H', again['pid'])), 'PUBREL resent on resume, message not resent')
    r.send(B.ack('pubcomp', again['pid']))
    check(r.read(timeout=1) is None, 'nothing more after PUBCOMP')
    r.close()
    # QoS 2 exactly once across publisher reconnects (inbound dedup state survives)
    s = B.paho(port, 'eo-sub', version=4)
    B.paho_connect(s, port, version=4)
    s.subscribe('eo', qos=2)
    time.sleep(0.3)
    r = B.Raw(port)
    r.send(B.connect('eo-pub', 4, clean=False))
    connack_of(r)
    r.send(B.publish('eo', 'only-once', qos=2, pid=42))
    r.read()
    r.close()
    time.sleep(0.3)
    r = B.Raw(port)
    r.send(B.connect('eo-pub', 4, clean=False))
    connack_of(r)
    r.send(B.publish('eo', 'only-once', qos=2, pid=42, dup=True))
    check(r.read() == (5, 0, b'\x00\x2a'), 'PUBREC for the resent QoS 2')
    r.send(B.ack('pubrel', 42))
    check(r.read() == (7, 0, b'\x00\x2a'), 'PUBCOMP')
    time.sleep(0.5)
    check(len(s.got) == 1, 'QoS 2 exactly once across a publisher reconnect')
    s.disconnect()
    s.loop_stop()
    b.stop()


def t08_props():
    b = B.Broker(EXE, workers=2).start()
    port = b.port
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.subscribeoptions import SubscribeOptions
    s = B.paho(port, 'props-sub', version=5)
    B.paho_connect(s, port)
    sp = Properties(PacketTypes.SUBSCRIBE)
    sp.SubscriptionIdentifier = 77
    s.subscribe('pr/#', qos=1, properties=sp)
    sp2 = Properties(PacketTypes.SUBSCRIBE)
    sp2.SubscriptionIdentifier = 78
    s.subscribe('pr/+', qos=1, properties=sp2)
    time.sleep(0.4)
    p = B.paho(port, 'props-pub', version=5)
    B.paho_connect(p, port)
    pp = Properties(PacketTypes.PUBLISH)
    pp.UserProperty = [('k1', 'v1'), ('k2', 'v2'), ('k1', 'v3')]
    pp.ContentType = 'text/plain'
    pp.ResponseTopic = 'reply/here'
    pp.CorrelationData = b'\x01\x02corr'
    pp.PayloadFormatIndicator = 1
    pp.MessageExpiryInterval = 100
    p.publish('pr/a', b'with props', qos=1, properties=pp).wait_for_publish(5)
    B.wait_for(lambda: len(s.got) == 1, 5, 'message with properties')
    m = s.got[0]
    pr = m.properties
    check(pr.UserProperty == [('k1', 'v1'), ('k2', 'v2'), ('k1', 'v3')], 'user properties in order')
    check(pr.ContentType == 'text/plain' and pr.ResponseTopic == 'reply/here' and
          pr.CorrelationData == b'\x01\x02corr' and pr.PayloadFormatIndicator == 1,
          'content type, response topic, correlation data, payload format passed through')
    check(90 <= pr.MessageExpiryInterval <= 100, 'message expiry forwarded (%d)' % pr.MessageExpiryInterval)
    check(sorted(pr.SubscriptionIdentifier) == [77, 78], 'both subscription identifiers')
    # topic alias inbound (raw): set alias 1 then publish with empty topic
    r = B.Raw(port)
    r.send(B.connect('aliaser', 5))
    p2 = connack_of(r)
    check(b'\x22' in p2[2], 'CONNACK has Topic Alias Maximum')
    r.send(B.publish('pr/alias', 'a1', version=5, pprops=b'\x23\x00\x01'))
    r.send(B.publish('', 'a2', version=5, pprops=b'\x23\x00\x01'))
    B.wait_for(lambda: len(s.got) >= 3, 5, 'aliased messages')
    check([x.topic for x in s.got[1:3]] == ['pr/alias', 'pr/alias'], 'inbound topic alias resolved')
    r.send(B.publish('', 'bad', version=5, pprops=b'\x23\x00\x09'))
    q = r.read()
    check(q and q != 'closed' and q[0] == 14 and q[2][0] in (0x82, 0x94), 'unknown alias -> DISCONNECT')
    # no-local
    n = B.paho(port, 'nolocal', version=5)
    B.paho_connect(n, port)
    n.subscribe('nl/#', options=SubscribeOptions(qos=0, noLocal=True))
    n.subscribe('nl2/#', options=SubscribeOptions(qos=0))
    time.sleep(0.3)
    n.publish('nl/x', b'self', qos=0)
    n.publish('nl2/x', b'self2', qos=0)
    B.wait_for(lambda: len(n.got) >= 1, 5, 'own message on a local subscription')
    time.sleep(0.3)
    check([x.topic for x in n.got] == ['nl2/x'], 'no-local suppresses own messages')
    # maximum packet size of the receiver: oversize messages are dropped for it only
    r = B.Raw(port)
    r.send(B.connect('small', 5, cprops=b'\x27\x00\x00\x00\x40'))
    connack_of(r)
    r.send(B.subscribe(1, [('mp/#', 0)], version=5))
    r.read()
    p.publish('mp/x', b'y' * 200, qos=0)
    p.publish('mp/x', b'small', qos=0)
    q = r.read()
    check(q and q != 'closed' and q[0] == 3 and B.parse_publish(q[1], q[2], 5)['payload'] == b'small',
          'oversize message dropped for a small Maximum Packet Size')
    # message expiry: a queued message past its expiry is not delivered
    r = B.Raw(port)
    r.send(B.connect('offline-exp', 5, clean=True, cprops=b'\x11\x00\x00\x00\x3c'))
    connack_of(r)
    r.send(B.subscribe(1, [('mx/#', 1)], version=5))
    r.read()
    r.send(b'\xe0\x00')
    r.closed()
    pp = Properties(PacketTypes.PUBLISH)
    pp.MessageExpiryInterval = 1
    p.publish('mx/a', b'expires', qos=1, properties=pp).wait_for_publish(5)
    p.publish('mx/b', b'stays', qos=1).wait_for_publish(5)
    time.sleep(2.2)
    r = B.Raw(port)
    r.send(B.connect('offline-exp', 5, clean=False, cprops=b'\x11\x00\x00\x00\x3c'))
    connack_of(r)
    q = r.read()
    check(q and q != 'closed' and B.parse_publish(q[1], q[2], 5)['payload'] == b'stays',
          'expired queued message dropped, the other delivered')
    for x in (s, p, n):
        x.disconnect()
        x.loop_stop()
    b.stop()


def t09_shared():
    b = B.Broker(EXE, workers=2).start()
    port = b.port
    members = []
    for i in range(4):
        c = B.paho(port, 'member%d' % i, version=5)
        B.paho_connect(c, port)
        c.subscribe('$share/g1/sh/#', qos=1)
        members.append(c)
    plain = B.paho(port, 'plain', version=5)
    B.paho_connect(plain, port)
    plain.subscribe('sh/#', qos=1)
    time.sleep(0.5)
    p = B.paho(port, 'sh-pub', version=4)
    B.paho_connect(p, port, version=4)
    for i in range(40):
        p.publish('sh/x', str(i).encode(), qos=1)
    B.wait_for(lambda: sum(len(c.got) for c in members) >= 40 and len(plain.got) >= 40, 10, 'shared deliveries')
    time.sleep(0.3)
    got = sorted(int(m.payload) for c in members for m in c.got)
    check(got == list(range(40)), 'each message to exactly one group member')
    check(sum(1 for c in members if c.got) >= 2, 'load spread over members (%s)' % [len(c.got) for c in members])
    check(len(plain.got) == 40, 'plain subscriber gets everything')
    # members leave: the rest keep receiving
    for c in members[:3]:
        c.disconnect()
        c.loop_stop()
    time.sleep(0.5)
    before = len(members[3].got)
    for i in range(10):
        p.publish('sh/y', str(i).encode(), qos=1)
    B.wait_for(lambda: len(members[3].got) >= before + 10, 10, 'remaining member gets all')
    check(True, 'no message stranded when members leave')
    for c in members[3:] + [plain, p]:
        c.disconnect()
        c.loop_stop()
    b.stop()


def t10_auth():
    tool = os.environ.get('TACHYON_PASSWD_TOOL') or os.path.join(os.path.dirname(EXE), 'tachyon_passwd')
    pwfile = B.tmpfile('passwd', '')
    for user, pw in (('alice', 'secret'), ('bob', 'hunter2')):
        r = subprocess.run([tool, '-b', pwfile, user, pw], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError('tachyon_passwd failed: ' + r.stderr + r.stdout)
    acl = B.tmpfile('acl', 'user alice\ntopic readwrite home/alice/#\ntopic read public/#\n'
                    'topic deny home/alice/secret\nuser bob\ntopic write public/#\n'
                    'pattern read users/%u/#\n')
    b = B.Broker(EXE, workers=2, conf={'password_file': pwfile, 'acl_file': acl,
                                       'allow_anonymous': 'false'}).start()
    port = b.port
    r = B.Raw(port)
    r.send(B.connect('anon', 4))
    check(r.read() == (2, 0, b'\x00\x05'), 'anonymous refused: 3.1.1 0x05')
    r = B.Raw(port)
    r.send(B.connect('anon5', 5))
    p = r.read()
    check(p[0] == 2 and p[2][1] == 0x87, 'anonymous refused: 5.0 0x87')
    r = B.Raw(port)
    r.send(B.connect('wrong', 4, user='alice', password='nope'))
    check(r.read() == (2, 0, b'\x00\x04'), 'bad password: 3.1.1 0x04')
    r = B.Raw(port)
    r.send(B.connect('wrong5', 5, user='alice', password='nope'))
    p = r.read()
    check(p[0] == 2 and p[2][1] == 0x86, 'bad password: 5.0 0x86')
    r = B.Raw(port)
    r.send(B.connect('alice1', 5, user='alice', password='secret'))
    check(r.read()[2][1] == 0, 'alice accepted')
    r.send(B.subscribe(1, [('home/alice/#', 1), ('home/bob/#', 1), ('public/#', 0), ('users/alice/x', 0)], version=5))
    p = r.read()
    check(p[0] == 9 and list(p[2][3:]) == [1, 0x87, 0, 0], 'SUBACK: ACL denies home/bob/# (%r)' % list(p[2][3:]))
    rb = B.Raw(port)
    rb.send(B.connect('bob1', 5, user='bob', password='hunter2'))
    check(rb.read()[2][1] == 0, 'bob accepted')
    rb.send(B.publish('home/alice/x', 'intrusion', qos=1, pid=1, version=5))
    p = rb.read()
    check(p[0] == 4 and p[2][2] == 0x87, 'bob PUBLISH to home/alice denied: PUBACK 0x87')
    rb.send(B.publish('public/news', 'hello', qos=1, pid=2, version=5))
    rb.read()
    p = r.read()
    check(p and p != 'closed' and p[0] == 3 and B.parse_publish(p[1], p[2], 5)['payload'] == b'hello',
          'allowed publish delivered')
    r.send(B.publish('home/alice/secret', 'x', qos=1, pid=3, version=5))
    p = r.read()
    check(p[0] == 4 and p[2][2] == 0x87, 'deny rule wins over readwrite')
    check(r.read(timeout=0.5) is None, 'denied publish not delivered')
    B.mosq_pub(port, 'x', 'y', extra=['-u', 'bob', '-P', 'hunter2'])
    check(True, 'mosquitto_pub with user/password accepted')
    out = b.output()
    check('authentication failed' in out, 'auth failures logged')
    b.stop()


def t11_sys():
    b = B.Broker(EXE, workers=2, conf={'sys_interval': 1}).start()
    port = b.port
    s = B.mosq_sub(port, '$SYS/broker/#', 26, timeout=5)
    out = s.communicate(timeout=10)[0]
    for t in ('uptime', 'clients/connected', 'messages/received', 'messages/sent',
              'bytes/received', 'subscriptions/count', 'retained messages/count',
              'messages/dropped', 'messages/retried', 'overload/publisher_pauses',
              'overload/slow_consumers', 'heap/current', 'clients/auth_busy',
              'messages/intercept_dropped', 'messages/dropped/queue_full',
              'messages/dropped/qos0_offline', 'messages/dropped/expired',
              'messages/dropped/too_large', 'messages/dropped/ring_full',
              'messages/dropped/no_share'):
        check('$SYS/broker/' + t in out, '$SYS/broker/' + t)
    heap = [ln.split()[-1] for ln in out.splitlines() if ln.startswith('$SYS/broker/heap/current ')]
    check(heap and heap[0].isdigit() and int(heap[0]) > 0,
          'heap/current is a byte count: %r' % heap)
    s = B.mosq_sub(port, '#', 1, timeout=2)
    B.mosq_pub(port, 'plain/x', 'p')
    out = s.communicate(timeout=10)[0]
    check('$SYS' not in out, '# does not match $SYS topics')
    b.stop()


def t12_signals():
    tool = os.environ.get('TACHYON_PASSWD_TOOL') or os.path.join(os.path.dirname(EXE), 'tachyon_passwd')
    pwfile = B.tmpfile('passwd-hup', '')
    subprocess.run([tool, '-b', pwfile, 'u1', 'p1'], check=True, capture_output=True, timeout=60)
    b = B.Broker(EXE, workers=2, conf={'password_file': pwfile, 'allow_anonymous': 'false'}).start()
    port = b.port
    r = B.Raw(port)
    r.send(B.connect('u2a', 4, user='u2', password='p2'))
    check(r.read() == (2, 0, b'\x00\x04'), 'unknown user refused before reload')
    subprocess.run([tool, '-b', pwfile, 'u2', 'p2'], check=True, capture_output=True, timeout=60)
    b.signal(signal.SIGHUP)
    time.sleep(0.5)
    r = B.Raw(port)
    r.send(B.connect('u2b', 4, user='u2', password='p2'))
    check(r.read() == (2, 0, b'\x00\x00'), 'new user accepted after SIGHUP')
    check('reloaded' in b.output(), 'reload logged')
    # SIGTERM: wills sent, MQTT 5 clients get DISCONNECT 0x8B, exit 0
    w = B.Raw(port)
    w.send(B.connect('watcher', 5, user='u1', password='p1'))
    connack_of(w)
    w.send(B.subscribe(1, [('bye/#', 0)], version=5))
    w.read()
    d = B.Raw(port)
    d.send(B.connect('dier', 4, user='u1', password='p1', will=('bye/dier', 'server went away', 0, False)))
    connack_of(d)
    time.sleep(0.2)
    b.signal(signal.SIGTERM)
    seen = []
    while True:
        p = w.read(timeout=5)
        if p in (None, 'closed'):
            break
        seen.append(p)
    check(any(p[0] == 3 and b'server went away' in p[2] for p in seen), 'will published on shutdown')
    check(any(p[0] == 14 and p[2][0] == 0x8B for p in seen), 'DISCONNECT 0x8B on shutdown')
    check(b.stop() == 0, 'exit code 0 after SIGTERM')


def auth_props(method, data):
    return b'\x15' + B.s16(method) + b'\x16' + B.s16(data)


def tachyond_fails(conf_text):
    """Runs tachyond with a config that must stop it at start-up: (exit code, output)."""
    cfgp = B.tmpfile('fail-%d.conf' % B.free_port(), conf_text)
    r = subprocess.run([EXE, '--config', cfgp, '--port', str(B.free_port()), '--bind',
                        '127.0.0.1', '--workers', '1'], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def t13_plugin():
    good = os.environ.get('TACHYON_TEST_PLUGIN')
    badabi = os.environ.get('TACHYON_TEST_PLUGIN_BADABI')
    noinit = os.environ.get('TACHYON_TEST_PLUGIN_NOINIT')
    if not (good and badabi and noinit):
        B.skip('the test plugins are not built (TACHYON_TEST_PLUGIN* unset)')
    done = os.path.join(B._tmp, 'plugin-cleaned')
    b = B.Broker(EXE, workers=2, conf={'plugin': good, 'plugin_opt_deny': 'forbidden/',
                                       'plugin_opt_token': 's3cret',
                                       'plugin_opt_cleanup': done}).start()
    port = b.port
    # the log line may reach the file a moment after the port accepts (a loaded machine)
    B.wait_for(lambda: 'test_plugin.so loaded (3 options)' in b.output(), 5,
               'the plugin\'s load line in the log')
    check(True, 'plugin loaded and logged')
    r = B.Raw(port)
    r.send(B.connect('p1', 5))
    check(connack_of(r)[2][1] == 0, 'plain client accepted')
    r.send(B.publish('forbidden/x', 'no', qos=1, pid=1, version=5))
    p = r.read()
    check(p[0] == 4 and p[2][2] == 0x87, "plugin's ACL hook denies: PUBACK 0x87 (%r)" % (p,))
    r.send(B.publish('allowed/x', 'yes', qos=1, pid=2, version=5))
    p = r.read()
    check(p[0] == 4 and p[2][2] in (0x00, 0x10), 'other topics allowed')
    t = B.Raw(port)
    t.send(B.connect('p2', 5, cprops=auth_props('PLUGIN-TOKEN', 's3cret')))
    p = t.read()
    check(p[0] == 2 and p[2][1] == 0 and b'PLUGIN-TOKEN' in p[2], "plugin's method accepts")
    t = B.Raw(port)
    t.send(B.connect('p3', 5, cprops=auth_props('PLUGIN-TOKEN', 'guess')))
    p = t.read()
    check(p[0] == 2 and p[2][1] == 0x87, "plugin's method refuses a wrong token: 0x87")
    t = B.Raw(port)
    t.send(B.connect('p4', 5, cprops=auth_props('NOBODY', 'x')))
    p = t.read()
    check(p[0] == 2 and p[2][1] == 0x8C, 'unknown method: 0x8C')
    check(not os.path.exists(done), 'no cleanup while running')
    b.stop()
    with open(done) as f:
        check(f.read() == 'cleaned\n', 'tachyon_plugin_cleanup ran at shutdown')
    # the loader's errors stop the start with a clear message (exit code 1)
    rc, out = tachyond_fails('plugin %s\n' % os.path.join(B._tmp, 'missing.so'))
    check(rc == 1 and 'missing.so: cannot load' in out, 'missing plugin file: %s' % out)
    rc, out = tachyond_fails('plugin %s\n' % badabi)
    check(rc == 1 and 'plugin ABI 999' in out, 'ABI mismatch: %s' % out)
    rc, out = tachyond_fails('plugin %s\n' % noinit)
    check(rc == 1 and 'no symbol tachyon_plugin_init' in out, 'missing init symbol: %s' % out)
    rc, out = tachyond_fails('plugin %s\nplugin_opt_fail 1\n' % good)
    check(rc == 1 and 'initialisation failed' in out, 'init refusing: %s' % out)
    rc, out = tachyond_fails('plugin_opt_deny x\nplugin %s\n' % good)
    check(rc == 2 and "comes before any 'plugin'" in out, 'option before its plugin: %s' % out)


def t14_auththread():
    tool = (os.environ.get('TACHYON_PASSWD_TOOL') or
            os.path.join(os.path.dirname(EXE), 'tachyon_passwd'))
    pwfile = B.tmpfile('passwd-slow', '')
    subprocess.run([tool, '-b', pwfile, 'alice', 'secret'], check=True, capture_output=True,
                   timeout=60)
    b = B.Broker(EXE, workers=2, conf={'password_file': pwfile, 'auth_threads': 1}).start()
    port = b.port
    for attempt in range(3):
        slow = []
        for i in range(3):
            r = B.Raw(port)
            r.send(B.connect('pw%d-%d' % (attempt, i), 4, user='alice', password='secret'))
            slow.append(r)
        time.sleep(0.05)  # their claims reach the control thread (ordering, not timing)
        fast = B.Raw(port)
        fast.send(B.connect('anon%d' % attempt, 4))
        # the order the CONNACKs arrive in: each PBKDF2 check costs about 0.1 s
        order = []
        conns = {r.s: name for r, name in zip(slow + [fast], ['a0', 'a1', 'a2', 'b'])}
        raws = {r.s: r for r in slow + [fast]}
        deadline = time.time() + 20
        while len(order) < 4 and time.time() < deadline:
            ready, _, _ = select.select([s for s in conns if conns[s] not in order], [], [], 1)
            for s in ready:
                p = raws[s].read(timeout=1)
                check(p == (2, 0, b'\x00\x00'), 'CONNACK accepted for %s (%r)' % (conns[s], p))
                order.append(conns[s])
        check(len(order) == 4, 'every CONNECT answered: %r' % order)
        check(order.index('b') < order.index('a2'),
              'anonymous CONNACK before the last password CONNACK: %r' % order)
        for r in slow + [fast]:
            r.close()
    # SIGHUP swaps the password table while checks against the old one are running
    conns = []
    for i in range(4):
        r = B.Raw(port)
        r.send(B.connect('hup%d' % i, 4, user='alice', password='secret'))
        conns.append(r)
        b.signal(signal.SIGHUP)
    for i, r in enumerate(conns):
        check(r.read(timeout=20) == (2, 0, b'\x00\x00'), 'accepted across reloads (%d)' % i)
    b.stop()
    # a full auth queue: one check running, one waiting (auth_queue 1), the rest refused 0x89
    b = B.Broker(EXE, workers=2, conf={'password_file': pwfile, 'auth_threads': 1,
                                       'auth_queue': 1, 'sys_interval': 1}).start()
    conns = []
    for i in range(6):
        r = B.Raw(b.port)
        r.send(B.connect('busy%d' % i, 5, user='alice', password='secret'))
        conns.append(r)
    codes = []
    for r in conns:
        p = r.read(timeout=30)
        check(p is not None and p != 'closed' and p[0] == 2, 'CONNACK (%r)' % (p,))
        codes.append(p[2][1])
    check(codes.count(0) >= 1 and codes.count(0x89) >= 1 and
          all(c in (0, 0x89) for c in codes),
          'accepted or refused 0x89 (server busy): %r' % codes)
    check(sys_value(b.port, '$SYS/broker/clients/auth_busy') == codes.count(0x89),
          'auth_busy counts the refusals')
    check('the authentication queue is full' in b.output(), 'refusal logged')
# -------------------------------------------------------------------------------------------------
def pub_props(raw):
    """MQTT 5 PUBLISH properties as {id: value} (the ones the broker may send)."""
    out, i = {}, 0
    while i < len(raw):
        pid = raw[i]
        i += 1
        if pid == 0x01:
            out[pid], i = raw[i], i + 1
        elif pid == 0x02:
            out[pid], i = struct.unpack('>I', raw[i:i + 4])[0], i + 4
        elif pid == 0x23:
            out[pid], i = struct.unpack('>H', raw[i:i + 2])[0], i + 2
        elif pid == 0x0B:
            n, i = B.vbi_decode(raw, i)
            out.setdefault(pid, []).append(n)
        elif pid in (0x03, 0x08, 0x09):
            ln = struct.unpack('>H', raw[i:i + 2])[0]
            out[pid], i = raw[i + 2:i + 2 + ln], i + 2 + ln
        elif pid == 0x26:
            for _ in range(2):
                ln = struct.unpack('>H', raw[i:i + 2])[0]
                i += 2 + ln
        else:
            raise AssertionError('unexpected property 0x%02x' % pid)
    return out


class AliasReader:
    """A raw MQTT 5 subscriber that resolves the broker's topic aliases like a client must."""

    def __init__(self, port, cid, alias_max, clean=True, expiry=0):
        cp = b''
        if alias_max is not None:
            cp += b'\x22' + struct.pack('>H', alias_max)
        if expiry:
            cp += b'\x11' + struct.pack('>I', expiry)
        self.r = B.Raw(port)
        self.r.send(B.connect(cid, 5, clean=clean, cprops=cp))
        self.connack = connack_of(self.r)
        self.aliases = {}
        self.wire = []  # (topic on the wire, alias or None)

    def next(self, timeout=5):
        """(resolved topic, payload, qos) of the next PUBLISH."""
        p = self.r.read(timeout)
        check(p not in (None, 'closed') and p[0] == 3, 'PUBLISH received')
        m = B.parse_publish(p[1], p[2], 5)
        pr = pub_props(m['props'])
        alias = pr.get(0x23)
        self.wire.append((m['topic'], alias))
        topic = m['topic']
        if alias is not None:
            if topic:
                self.aliases[alias] = topic
            else:
                check(alias in self.aliases, 'alias %d was set before it is used' % alias)
                topic = self.aliases[alias]
        if m['qos']:
            self.r.send(B.ack('puback' if m['qos'] == 1 else 'pubrec', m['pid']))
        return topic, m['payload'], m['qos']


def t15_alias():
    b = B.Broker(EXE, workers=2, conf={'topic_alias_maximum_out': 2}).start()
    port = b.port
    # a client with Topic Alias Maximum 5 gets at most 2 (the broker's cap): free ones first,
    # then the least recently sent topic's alias is rebound
    a = AliasReader(port, 'alias-sub', 5)
    a.r.send(B.subscribe(1, [('al/#', 1)], version=5))
    check(a.r.read()[0] == 9, 'SUBACK')
    plain = AliasReader(port, 'plain-sub', None)  # no Topic Alias Maximum: never aliased
    plain.r.send(B.subscribe(1, [('al/#', 0)], version=5))
    check(plain.r.read()[0] == 9, 'SUBACK')
    v3 = B.paho(port, 'alias-v3', version=4)
    B.paho_connect(v3, port, version=4)
    v3.subscribe('al/#', qos=0)
    pub = B.Raw(port)
    pub.send(B.connect('alias-pub', 5))
    connack_of(pub)
    seq = ['al/a', 'al/a', 'al/b', 'al/a', 'al/c', 'al/b', 'al/' + 'x' * 200, 'al/c', 'al/a']
    pub.send(b''.join(B.publish(t, 'm%d' % i, version=5) for i, t in enumerate(seq)))
    got = [a.next() for _ in seq]
    check([(t, p) for t, p, _ in got] == [(t, b'm%d' % i) for i, t in enumerate(seq)],
          'aliased subscriber resolves every topic, in order')
    check(a.wire == [('al/a', 1), ('', 1), ('al/b', 2), ('', 1), ('al/c', 2), ('al/b', 1),
                     ('al/' + 'x' * 200, None), ('', 2), ('al/a', 1)],
          'wire: topic+alias once, then empty topic; LRU rebinding; long topic without '
          '(%r)' % [(t[:8], x) for t, x in a.wire])
    pg = [plain.next() for _ in seq]
    check([t for t, _, _ in pg] == seq and all(x is None for _, x in plain.wire),
          'client without Topic Alias Maximum gets full topics, no alias')
    B.wait_for(lambda: len(v3.got) >= len(seq), 5, '3.1.1 deliveries')
    check([m.topic for m in v3.got] == seq, '3.1.1 subscriber unaffected')
    # QoS 1 through the session queue carries aliases too
    pub.send(b''.join(B.publish('al/q', 'q%d' % i, qos=1, pid=10 + i, version=5)
                      for i in range(3)))
    got = [a.next() for _ in range(3)]
    check([(t, q) for t, _, q in got] == [('al/q', 1)] * 3 and a.wire[-3][0] == 'al/q' and
          a.wire[-2][0] == '' and a.wire[-1][0] == '', 'QoS 1 aliased: topic once, then alias')
    # aliases belong to the connection: a resumed session starts without them
    a.r.close()
    r2 = AliasReader(port, 'alias-per', 4, clean=True, expiry=60)
    r2.r.send(B.subscribe(1, [('ap/#', 1)], version=5))
    check(r2.r.read()[0] == 9, 'SUBACK')
    pub.send(B.publish('ap/t', 'one', qos=1, pid=30, version=5))
    check(r2.next()[0] == 'ap/t' and r2.wire[-1] == ('ap/t', 1),
          'alias 1 set on the first connection')
    r2.r.send(b'\xe0\x00')
    r2.r.closed()
    pub.send(B.publish('ap/t', 'two', qos=1, pid=31, version=5))
    time.sleep(0.3)
    r3 = AliasReader(port, 'alias-per', 4, clean=False, expiry=60)
    check(r3.connack[2][0] == 1, 'session present')
    t, p, _ = r3.next()
    check((t, p) == ('ap/t', b'two') and r3.wire[-1] == ('ap/t', 1),
          'new connection: the topic is sent again with its alias')
    r3.r.close()
    pub.close()
    plain.r.close()
    v3.disconnect()
    v3.loop_stop()
    b.stop()
    # topic_alias_maximum_out 0: never
    b = B.Broker(EXE, workers=1, conf={'topic_alias_maximum_out': 0}).start()
    a = AliasReader(b.port, 'alias-off', 10)
    a.r.send(B.subscribe(1, [('al/#', 0)], version=5))
    a.r.read()
    pub = B.Raw(b.port)
    pub.send(B.connect('alias-pub', 5))
    connack_of(pub)
    pub.send(B.publish('al/a', 'x', version=5) + B.publish('al/a', 'y', version=5))
    a.next()
    a.next()
    check(a.wire == [('al/a', None)] * 2, 'topic_alias_maximum_out 0: no aliases')
    pub.close()
    a.r.close()
    b.stop()


# -------------------------------------------------------------------------------------------------
def read_pub(r, version=4, timeout=5):
    p = r.read(timeout)
    check(p not in (None, 'closed') and p[0] == 3, 'PUBLISH received')
    return B.parse_publish(p[1], p[2], version)


def t16_retry():
    b = B.Broker(EXE, workers=2, conf={'retry_interval': 1}).start()
    port = b.port
    for version in (4, 3):
        r = B.Raw(port)
        r.send(B.connect('retry-%d' % version, version))
        connack_of(r)
        r.send(B.subscribe(1, [('rt/#', 2)]))
        check(r.read()[0] == 9, 'SUBACK')
        # QoS 1: not acknowledged -> resent with DUP after retry_interval, same packet id
        B.mosq_pub(port, 'rt/a', 'one', qos=1)
        B.mosq_pub(port, 'rt/b', 'two', qos=1)
        first = [read_pub(r), read_pub(r)]
        t0 = time.time()
        check([(m['payload'], m['dup']) for m in first] == [(b'one', False), (b'two', False)],
              'MQTT %d: QoS 1 delivered' % version)
        again = [read_pub(r, timeout=3), read_pub(r, timeout=3)]
        dt = time.time() - t0
        check([(m['payload'], m['dup'], m['pid']) for m in again] ==
              [(b'one', True, first[0]['pid']), (b'two', True, first[1]['pid'])],
              'MQTT %d: both resent in order with DUP and their packet ids' % version)
        check(0.8 <= dt <= 2.5, 'after about retry_interval (%.2f s)' % dt)
        again2 = read_pub(r, timeout=3)
        check(again2['pid'] == first[0]['pid'] and again2['dup'],
              'resent again while unacknowledged')
        read_pub(r)
        r.send(B.ack('puback', first[0]['pid']) + B.ack('puback', first[1]['pid']))
        check(r.read(timeout=2.5) is None, 'MQTT %d: no resend once acknowledged' % version)
        # QoS 2: PUBLISH resent until PUBREC, then PUBREL resent until PUBCOMP
        B.mosq_pub(port, 'rt/c', 'three', qos=2)
        m = read_pub(r)
        check(m['qos'] == 2 and not m['dup'], 'QoS 2 delivered')
        m2 = read_pub(r, timeout=3)
        check(m2['dup'] and m2['pid'] == m['pid'], 'QoS 2 PUBLISH resent without PUBREC')
        r.send(B.ack('pubrec', m['pid']))
        rel = struct.pack('>H', m['pid'])
        check(r.read() == (6, 2, rel), 'PUBREL')
        t0 = time.time()
        check(r.read(timeout=3) == (6, 2, rel), 'PUBREL resent without PUBCOMP')
        check(0.8 <= time.time() - t0 <= 2.5, 'after about retry_interval')
        r.send(B.ack('pubcomp', m['pid']))
        check(r.read(timeout=2.5) is None, 'nothing more after PUBCOMP')
        r.close()
    # MQTT 5: never resent on the same connection
    r = B.Raw(port)
    r.send(B.connect('retry-5', 5))
    connack_of(r)
    r.send(B.subscribe(1, [('rt/#', 2)], version=5))
    check(r.read()[0] == 9, 'SUBACK')
    B.mosq_pub(port, 'rt/d', 'four', qos=1)
    B.mosq_pub(port, 'rt/e', 'five', qos=2)
    read_pub(r, 5)
    read_pub(r, 5)
    check(r.read(timeout=3) is None, 'MQTT 5: no resend on the same connection')
    r.close()
    b.stop()


# -------------------------------------------------------------------------------------------------
def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def sys_value(port, topic):
    """The retained $SYS value of topic (an integer), read with mosquitto_sub."""
    s = B.mosq_sub(port, topic, 1, timeout=5)
    out = s.communicate(timeout=10)[0].strip()
    check(out.startswith(topic + ' '), '%s published (%r)' % (topic, out))
    return int(out.split()[-1])


class Flood:
    """A raw 3.1.1 publisher sending n numbered QoS 0 messages as fast as the broker reads them
    (in a thread: with qos0_overload pause the broker stops reading it)."""

    def __init__(self, port, cid, topic, n, size=200):
        import threading
        self.r = B.Raw(port, timeout=60)
        self.r.send(B.connect(cid, 4))
        connack_of(self.r)
        pad = 'x' * size
        self.chunks = [b''.join(B.publish(topic, '%08d%s' % (i, pad))
                                for i in range(k, min(n, k + 2000)))
                       for k in range(0, n, 2000)]
        self.done = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            for c in self.chunks:
                self.r.s.sendall(c)
            self.done = 'ok'
        except OSError as e:
            self.done = 'error: %s' % e


def split_packets(buf):
    """Whole MQTT packets at the start of buf: ([(first byte, body)], the rest)."""
    out, off = [], 0
    while len(buf) - off >= 2:
        v = B.vbi_decode(buf, off + 1)
        if v is None or len(buf) < v[1] + v[0]:
            break
        n, i = v
        out.append((buf[off], buf[i:i + n]))
        off = i + n
    return out, buf[off:]


class SlowReader:
    """A raw 3.1.1 QoS 0 subscriber with a small receive buffer that reads at most rate bytes/s
    (0: as fast as it can) in read_for(), and counts the numbered messages it gets. Until
    read_for() is called it reads nothing."""

    def __init__(self, port, cid, topic, rate):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.settimeout(5)
        s.connect((B.HOST, port))
        self.r = B.Raw.__new__(B.Raw)
        self.r.s, self.r.buf = s, b''
        self.r.send(B.connect(cid, 4))
        connack_of(self.r)
        self.r.send(B.subscribe(1, [(topic, 0)]))
        check(self.r.read()[0] == 9, 'SUBACK')
        self.rate = rate
        self.seqs = []

    def read_for(self, seconds, want):
        """Reads (slowly) until want messages or seconds pass."""
        deadline = time.time() + seconds
        self.r.s.settimeout(0.5)
        d, t0 = b'', time.time()  # first what was read with the SUBACK
        while time.time() < deadline and len(self.seqs) < want:
            pkts, self.r.buf = split_packets(self.r.buf + d)
            for first, body in pkts:
                if first >> 4 == 3:
                    tl = struct.unpack('>H', body[:2])[0]
                    self.seqs.append(int(body[2 + tl:10 + tl]))
            if self.rate:
                time.sleep(max(0.0, len(d) / self.rate - (time.time() - t0)))
            t0 = time.time()
            try:
                d = self.r.s.recv(8192)
            except socket.timeout:
                d = b''
                continue
            if not d:
                break


def t17_overload():
    n = 150000
    # qos0_overload pause: a slow subscriber gets every message, in order; the broker's memory
    # stays bounded because it stops reading the publisher
    # (ring_size: what a ring holds was routed before the pause took hold; a small one keeps
    # the RSS bound below about the queue limits rather than 65536 ring slots)
    conf = {'qos0_overload': 'pause', 'max_queued_messages': 200, 'sys_interval': 1,
            'slow_consumer_timeout': 2, 'ring_size': 4096}
    # ASan keeps freed memory in a quarantine (256 MB by default): bound it, or the RSS check
    # would measure ASan instead of the broker (no effect on builds without ASan)
    os.environ['ASAN_OPTIONS'] = os.environ.get('ASAN_OPTIONS', '') + ':quarantine_size_mb=4'
    b = B.Broker(EXE, workers=2, conf=conf).start()
    port = b.port
    slow = SlowReader(port, 'slow', 'fl/#', 4 << 20)
    rss0 = rss_kib(b.proc.pid)
    peak = [rss0, rss0]  # peak RSS over the whole run, and until half the messages arrived
    import threading
    stop = []

    def sample():
        while not stop:
            r = rss_kib(b.proc.pid)
            peak[0] = max(peak[0], r)
            if len(slow.seqs) < n // 2:
                peak[1] = max(peak[1], r)
            time.sleep(0.05)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    f = Flood(port, 'flood', 'fl/x', n)
    slow.read_for(120, n)
    stop.append(1)
    th.join()
    f.t.join(10)
    check(f.done == 'ok', 'publisher sent all %d (%s)' % (n, f.done))
    check(slow.seqs == list(range(n)), 'pause: all %d QoS 0 messages arrived, in order (%d got)'
          % (n, len(slow.seqs)))
    grew = peak[0] - rss0
    sent_kib = n * 215 // 1024
    print('rss: start %d KiB, peak %d KiB (first half %d KiB), published %d KiB'
          % (rss0, peak[0], peak[1], sent_kib))
    check(grew < sent_kib // 2, 'broker RSS grew by %d KiB, under half the %d KiB published'
          % (grew, sent_kib))
    check(peak[0] - peak[1] < sent_kib // 8, 'and by %d KiB in the second half: bounded, not '
          'growing with what is published' % (peak[0] - peak[1]))
    check(sys_value(port, '$SYS/broker/overload/publisher_pauses') > 0, 'pauses counted')
    check(sys_value(port, '$SYS/broker/messages/dropped') == 0, 'nothing dropped')
    # a subscriber that never reads: after slow_consumer_timeout it no longer holds the
    # publisher back, its queue drops (counted) and the publisher finishes
    # (150 times the dead one's queue: enough to show it no longer holds anyone back, few
    # enough for a Python reader under ASan on a loaded machine)
    n2 = 30000
    dead = SlowReader(port, 'dead', 'dd/#', 0)  # never reads
    other = SlowReader(port, 'other', 'dd/#', 0)
    f = Flood(port, 'flood2', 'dd/x', n2)
    other.read_for(120, n2)  # as fast as it can
    f.t.join(60)
    check(f.done == 'ok', 'publisher not stalled for ever by a subscriber that never reads')
    check(len(other.seqs) == n2 and other.seqs == sorted(other.seqs),
          'a reading subscriber of the same topic got all %d (%d)' % (n2, len(other.seqs)))
    time.sleep(1.5)
    check(sys_value(port, '$SYS/broker/overload/slow_consumers') >= 1, 'slow consumer counted')
    check(sys_value(port, '$SYS/broker/messages/dropped') > 0, 'its queue dropped, counted')
    check(sys_value(port, '$SYS/broker/messages/dropped/queue_full') > 0,
          'counted as queue_full')
    check('no longer holds publishers back' in b.output(), 'slow consumer logged')
    for x in (slow, dead, other):
        x.r.close()
    f.r.close()
    b.stop()
    # qos0_overload drop: the same slow subscriber loses messages, counted in $SYS
    conf['qos0_overload'] = 'drop'
    b = B.Broker(EXE, workers=2, conf=conf).start()
    port = b.port
    slow = SlowReader(port, 'slow', 'fl/#', 4 << 20)
    f = Flood(port, 'flood', 'fl/x', n)
    f.t.join(60)
    check(f.done == 'ok', 'drop: the publisher is never paused')
    slow.read_for(5, n)
    check(len(slow.seqs) < n and slow.seqs == sorted(slow.seqs),
          'drop: the slow subscriber lost some (%d of %d), in order' % (len(slow.seqs), n))
    time.sleep(1.5)
    check(sys_value(port, '$SYS/broker/messages/dropped') > 0, 'drops counted in $SYS')
    check(sys_value(port, '$SYS/broker/overload/publisher_pauses') == 0, 'drop: no pauses')
    slow.r.close()
    f.r.close()
    b.stop()


# -------------------------------------------------------------------------------------------------
class QosPublisher:
    """A raw 3.1.1 publisher sending n numbered QoS 1 messages (at most window unacknowledged)
    from a thread, counting PUBACKs."""

    def __init__(self, port, cid, topic, n, window=200):
        import threading
        self.r = B.Raw(port, timeout=60)
        self.r.send(B.connect(cid, 4))
        connack_of(self.r)
        self.topic, self.n, self.window = topic, n, window
        self.acked = 0
        self.done = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        sent, buf = 0, b''
        try:
            self.r.s.settimeout(30)
            while self.acked < self.n:
                if sent < self.n and sent - self.acked < self.window:
                    k = min(self.n, sent + 50)
                    self.r.s.sendall(b''.join(
                        B.publish(self.topic, '%08d' % i, qos=1, pid=i % 65535 + 1)
                        for i in range(sent, k)))
                    sent = k
                    continue
                d = self.r.s.recv(65536)
                if not d:
                    raise OSError('closed')
                pkts, buf = split_packets(buf + d)
                self.acked += sum(1 for first, _ in pkts if first >> 4 == 4)
            self.done = 'ok'
        except OSError as e:
            self.done = 'error: %s' % e


def t18_takeover():
    b = B.Broker(EXE, workers=2).start()
    port = b.port
    n = 150000
    seen = set()
    dups = [0, 0]  # again with DUP (a resend: allowed), again without (routed twice)

    def session(clean):
        r = B.Raw(port, timeout=10)
        r.send(B.connect('tk-sub', 4, clean=clean))
        p = connack_of(r)
        return r, p

    def read(r, seconds):
        """Reads and acknowledges for seconds; the rest stays unacknowledged."""
        deadline = time.time() + seconds
        r.s.settimeout(0.05)
        d = b''  # first what connack_of() read beyond the CONNACK
        while time.time() < deadline:
            pkts, r.buf = split_packets(r.buf + d)
            acks = b''
            for first, body in pkts:
                if first >> 4 != 3:
                    continue
                m = B.parse_publish(first & 0x0f, body)
                k = int(m['payload'])
                if k in seen:
                    dups[0 if m['dup'] else 1] += 1
                seen.add(k)
                acks += B.ack('puback', m['pid'])
            if acks:
                r.send(acks)
            try:
                d = r.s.recv(65536)
            except socket.timeout:
                d = b''
                continue
            except OSError:
                return
            if not d:
                return

    r, _ = session(False)
    r.send(B.subscribe(1, [('tk/#', 1)]))
    check(r.read()[0] == 9, 'SUBACK')
    r.close()
    r, p = session(False)
    check(p[2][0] == 1, 'persistent session present')
    pub = QosPublisher(port, 'tk-pub', 'tk/x', n)
    moves = 0
    while (pub.done is None or moves < 16) and moves < 200:
        read(r, 0.05)
        nr, p = session(False)  # takes the session over while the stream runs
        check(p[2][0] == 1, 'takeover %d: session present' % moves)
        r.close()
        r = nr
        moves += 1
    pub.t.join(60)
    check(pub.done == 'ok' and pub.acked == n, 'publisher: all %d acknowledged (%s, %d)'
          % (n, pub.done, pub.acked))
    # drain what is still queued: as long as it keeps coming (a loaded machine makes this
    # Python reader slow), at most 120 s; a loss shows as a stall
    last, stall, end = len(seen), time.time() + 20, time.time() + 120
    while len(seen) < n and time.time() < min(stall, end):
        read(r, 0.2)
        if len(seen) > last:
            last, stall = len(seen), time.time() + 20
    out = b.output()
    import re
    cross = sum(1 for a, c in re.findall(r"'tk-sub': session on core (\d+) taken over by a "
                                         r"connection on core (\d+)", out) if a != c)
    print('takeovers %d (%d across cores), resent duplicates %d' % (moves, cross, dups[0]))
    if b.workers > 1:  # the DPDK backend runs one worker: every move stays on its core
        check(cross >= 2, 'at least two takeovers moved the session to the other core (%d)'
              % cross)
    missing = sorted(set(range(n)) - seen)
    check(not missing, 'every acknowledged message arrived at least once across %d takeovers '
          '(missing %d, first %s)' % (moves, len(missing), missing[:5]))
    check(dups[1] == 0, 'none was delivered twice as a new message (%d)' % dups[1])
    r.close()
    pub.r.close()
    b.stop()


GROUPS = {
    '01-connect': t01_connect, '02-malformed': t02_malformed, '03-pubsub': t03_pubsub,
    '04-retained': t04_retained, '05-qos': t05_qos, '06-will': t06_will,
    '07-session': t07_session, '08-props': t08_props, '09-shared': t09_shared,
    '10-auth': t10_auth, '11-sys': t11_sys, '12-signals': t12_signals,
    '13-plugin': t13_plugin, '14-auththread': t14_auththread,
    '15-alias': t15_alias, '16-retry': t16_retry, '17-overload': t17_overload,
    '18-takeover': t18_takeover,
}

if __name__ == '__main__':
    B.need_tools('mosquitto_pub', 'mosquitto_sub')
    B.need_paho()
    if not os.access(EXE, os.X_OK):
        B.skip('tachyond not built: ' + EXE)
    try:
        GROUPS[GROUP]()
    except AssertionError as e:
        print('FAIL: %s' % e, file=sys.stderr, flush=True)
        sys.exit(1)
    print('PASS ' + GROUP)
