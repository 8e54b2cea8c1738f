# SPDX-License-Identifier: MIT
"""Helpers of the tachyond integration tests: start/stop a real broker on a free loopback port,
raw MQTT packets over a socket (for exact responses and malformed input), paho clients
(Debian's python3-paho-mqtt 1.6, /usr/bin/python3), mosquitto_pub/mosquitto_sub runs.

Every broker started here is stopped (SIGTERM, then SIGKILL) at exit, every wait is bounded.

DPDK mode (dpdk_e2e.sh sets it up and runs the test script inside a network namespace it
created): TACHYON_IT_DPDK_NET=A.B.C and TACHYON_IT_DPDK_PREFIX=NAME in the environment make
every broker run the DPDK backend on a net_tap device (at most TACHYON_IT_DPDK_WORKERS workers,
default 1; EAL file prefix NAME<n>, tap NAME<n>) at A.B.C.2, the tap's kernel side gets A.B.C.1, and every client talks to HOST =
A.B.C.2. Brokers then run one at a time (they share the subnet).
"""
import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77
DPDK_NET = os.environ.get('TACHYON_IT_DPDK_NET')
DPDK_PREFIX = os.environ.get('TACHYON_IT_DPDK_PREFIX', 'tqit')
DPDK = DPDK_NET is not None
DPDK_WORKERS = int(os.environ.get('TACHYON_IT_DPDK_WORKERS', '1'))
HOST = DPDK_NET + '.2' if DPDK else '127.0.0.1'  # where clients connect
_brokers = []
_dpdk_seq = 0
_tmp = tempfile.mkdtemp(prefix='tachyond-it-')


def skip(why):
    print('SKIPPED: ' + why, file=sys.stderr, flush=True)
    sys.exit(SKIP)


def need_tools(*tools):
    for t in tools:
        if shutil.which(t) is None:
            skip('%s is not installed' % t)


def need_paho():
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        skip('python3-paho-mqtt is not installed for ' + sys.executable)


def tmpfile(name, text):
    p = os.path.join(_tmp, name)
    with open(p, 'w') as f:
        f.write(text)
    return p


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Broker:
    """A tachyond process. args: extra flags; conf: dict written to a config file."""

    def __init__(self, exe, workers=2, conf=None, args=()):
        self.exe = exe
        self.port = None
        self.proc = None
        self.log = None
        self.workers = min(workers, DPDK_WORKERS) if DPDK else workers
        self.conf = conf or {}
        self.args = list(args)

    def start(self):
        for _ in range(5):
            self.port = free_port()
            cfgp = tmpfile('tachyon-%d.conf' % self.port,
                           ''.join('%s %s\n' % kv for kv in self.conf.items()))
            self.log = os.path.join(_tmp, 'tachyond-%d.log' % self.port)
            self.logf = open(self.log, 'w')
            self.proc = subprocess.Popen(
                [self.exe, '--config', cfgp, '--port', str(self.port), '--bind', '127.0.0.1',
                 '--workers', str(self.workers), '--log-level', 'info'] + self._dpdk_args()
                + self.args, stdout=self.logf, stderr=subprocess.STDOUT)
            _brokers.append(self)
            deadline = time.time() + (30 if DPDK else 10)
            if DPDK and not self._tap_up(deadline):
                self.stop(check=False)
                continue
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection((HOST, self.port), timeout=0.5).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            self.stop(check=False)
        raise RuntimeError('tachyond did not start: ' + self.output())

    def _dpdk_args(self):
        global _dpdk_seq
        if not DPDK:
            return []
        _dpdk_seq += 1
        self.tap = '%s%d' % (DPDK_PREFIX, _dpdk_seq)
        return ['--backend', 'dpdk', '--ip', DPDK_NET + '.2/24', '--dpdk-args',
                '--no-huge -m 512 --no-pci --file-prefix=%s --vdev=net_tap0,iface=%s'
                % (self.tap, self.tap)]

    def _tap_up(self, deadline):
        """DPDK mode: waits for the broker's tap and gives its kernel side DPDK_NET.1."""
        while time.time() < deadline and self.proc.poll() is None:
            if subprocess.run(['ip', 'link', 'show', self.tap], capture_output=True,
                              timeout=10).returncode == 0:
                for cmd in (['ip', 'addr', 'add', DPDK_NET + '.1/24', 'dev', self.tap],
                            ['ip', 'link', 'set', self.tap, 'up']):
                    subprocess.run(cmd, check=True, capture_output=True, timeout=10)
                return True
            time.sleep(0.05)
        return False

    def output(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ''

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, check=True):
        """SIGTERM; returns the exit code. check: fail on a non-zero code or a sanitizer report."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    raise AssertionError('tachyond did not stop on SIGTERM')
        rc = self.proc.returncode
        self.proc = None
        self.logf.close()
        out = self.output()
        if check:
            if rc != 0:
                raise AssertionError('tachyond exited with %s:\n%s' % (rc, out[-4000:]))
            for bad in ('ERROR: AddressSanitizer', 'runtime error:', 'ERROR: LeakSanitizer'):
                if bad in out:
                    raise AssertionError('sanitizer report:\n' + out[-6000:])
        return rc


@atexit.register
def _cleanup():
    for b in _brokers:
        if b.proc is not None and b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait()
    shutil.rmtree(_tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# Raw MQTT.

def vbi(n):
    out = b''
    while True:
        b = n % 128
        n //= 128
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def vbi_decode(buf, i):
    """The variable byte integer at buf[i:] as (value, index after it), or None if cut short."""
    n, mult = 0, 1
    while i < len(buf):
        b = buf[i]
        i += 1
        n += (b & 0x7f) * mult
        mult *= 128
        if not b & 0x80:
            return n, i
    return None


def s16(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack('>H', len(b)) + b


def packet(first, body):
    return bytes([first]) + vbi(len(body)) + body


def props(raw=b''):
    return vbi(len(raw)) + raw


def connect(client_id, version=4, clean=True, keepalive=60, will=None, user=None, password=None,
            cprops=b'', wprops=b''):
    """will: (topic, payload, qos, retain)."""
    name = b'MQIsdp' if version == 3 else b'MQTT'
    flags = 0x02 if clean else 0
    payload = s16(client_id)
    if will:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
        if version == 5:
            payload += props(wprops)
        payload += s16(will[0]) + s16(will[1])
    if user is not None:
        flags |= 0x80
        payload += s16(user)
    if password is not None:
        flags |= 0x40
        payload += s16(password)
    vh = s16(name) + bytes([version, flags]) + struct.pack('>H', keepalive)
    if version == 5:
        vh += props(cprops)
    return packet(0x10, vh + payload)


def publish(topic, payload, qos=0, pid=1, retain=False, dup=False, version=4, pprops=b''):
    if isinstance(payload, str):
        payload = payload.encode()
    body = s16(topic)
    if qos:
        body += struct.pack('>H', pid)
    if version == 5:
        body += props(pprops)
    return packet(0x30 | (qos << 1) | (1 if retain else 0) | (8 if dup else 0), body + payload)


def subscribe(pid, filters, version=4, sprops=b''):
    """filters: [(filter, options)]"""
    body = struct.pack('>H', pid)
    if version == 5:
        body += props(sprops)
    for f, o in filters:
        body += s16(f) + bytes([o])
    return packet(0x82, body)


def ack(kind, pid, version=4, reason=None):
    first = {'puback': 0x40, 'pubrec': 0x50, 'pubrel': 0x62, 'pubcomp': 0x70}[kind]
    body = struct.pack('>H', pid)
    if version == 5 and reason is not None:
        body += bytes([reason])
    return packet(first, body)


class Raw:
    """A raw MQTT connection that reads whole packets."""

    def __init__(self, port, timeout=5.0):
        self.s = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b''

    def send(self, data):
        self.s.sendall(data)

    def _fill(self, deadline):
        self.s.settimeout(max(0.01, deadline - time.time()))
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return b''
        if d:
            self.buf += d
        return d

    def read(self, timeout=5.0):
        """One packet as (type, flags, body), or 'closed', or None on timeout."""
        deadline = time.time() + timeout
        while True:
            if len(self.buf) >= 2:
                n, mult, i = 0, 1, 1
                while i < len(self.buf) and i < 5:
                    b = self.buf[i]
                    n += (b & 0x7f) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        if len(self.buf) >= i + n:
                            first = self.buf[0]
                            body = self.buf[i:i + n]
                            self.buf = self.buf[i + n:]
                            return (first >> 4, first & 0x0f, body)
                        break
            if time.time() >= deadline:
                return None
            d = self._fill(deadline)
            if d == b'':
                return 'closed'

    def closed(self, timeout=5.0):
        """True if the peer closes within timeout (packets before the close are skipped)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            p = self.read(deadline - time.time())
            if p == 'closed':
                return True
            if p is None:
                return False
        return False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def parse_publish(flags, body, version=4):
    qos = (flags >> 1) & 3
    tl = struct.unpack('>H', body[:2])[0]
    topic = body[2:2 + tl].decode()
    i = 2 + tl
    pid = None
    if qos:
        pid = struct.unpack('>H', body[i:i + 2])[0]
        i += 2
    pr = b''
    if version == 5:
        n, i = vbi_decode(body, i)
        pr = body[i:i + n]
        i += n
    return {'topic': topic, 'qos': qos, 'pid': pid, 'retain': bool(flags & 1),
            'dup': bool(flags & 8), 'payload': body[i:], 'props': pr}


# ------------------------------------------------------------------------------------------------
# paho.

def paho(port, cid, version=5, clean=True, userdata=None, **kw):
    import paho.mqtt.client as mqtt
    proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
    if version == 5:
        c = mqtt.Client(client_id=cid, protocol=proto, userdata=userdata)
    else:
        c = mqtt.Client(client_id=cid, protocol=proto, clean_session=clean, userdata=userdata)
    c.got = []
    c.connack = None

    def on_message(cl, ud, msg):
        cl.got.append(msg)

    def on_connect(cl, ud, flags, rc, properties=None):
        cl.connack = (flags, rc, properties)
    c.on_message = on_message
    c.on_connect = on_connect

    # subscribe() waits for the SUBACK when connected: the broker sends it once the
    # subscription is routable, so tests need not guess with a sleep (a loaded CI machine
    # made such guesses flaky).
    c.subacked = set()

    def on_subscribe(cl, ud, mid, *rest):
        cl.subacked.add(mid)
    c.on_subscribe = on_subscribe
    raw_subscribe = c.subscribe

    def subscribe(*a, **k):
        rc, mid = raw_subscribe(*a, **k)
        if rc == 0 and c.is_connected():
            wait_for(lambda: mid in c.subacked, 10, 'SUBACK')
        return rc, mid
    c.subscribe = subscribe
    return c


def paho_connect(c, port, version=5, clean=True, timeout=5, **kw):
    import paho.mqtt.client as mqtt
    if version == 5:
        c.connect(HOST, port, keepalive=kw.get('keepalive', 60), clean_start=clean,
                  properties=kw.get('properties'))
    else:
        c.connect(HOST, port, keepalive=kw.get('keepalive', 60))
    c.loop_start()
    wait_for(lambda: c.connack is not None, timeout, 'CONNACK for ' + str(c._client_id))
    return c


def wait_for(cond, timeout=5.0, what='condition'):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError('timed out waiting for ' + what)


def mosq_sub(port, topic, count, version='mqttv311', qos=0, extra=(), timeout=10):
    return subprocess.Popen(['mosquitto_sub', '-p', str(port), '-h', HOST, '-t', topic,
                             '-C', str(count), '-q', str(qos), '-V', version, '-v',
                             '-W', str(timeout)] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mosq_pub(port, topic, msg, version='mqttv311', qos=0, extra=()):
    r = subprocess.run(['mosquitto_pub', '-p', str(port), '-h', HOST, '-t', topic, '-m',
                        msg, '-q', str(qos), '-V', version] + list(extra),
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise AssertionError('mosquitto_pub failed: ' + r.stderr)
