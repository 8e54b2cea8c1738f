#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Integration tests of the load generator (bench/bench_loadgen) against real peers on loopback.

    test_loadgen.py LOADGEN RELAY mosquitto   short runs against a mosquitto started here:
                                              QoS 0/1/2 pairs (MQTT 5 and 3.1.1), fan-out,
                                              wildcard fan-in, shared subscription, fan-in QoS 2,
                                              idle connections (memory, $SYS heap)
    test_loadgen.py LOADGEN RELAY relay       the same kind of runs against bench_relay, and the
                                              CPU figures of --pid
    test_loadgen.py LOADGEN RELAY tachyon     runs against tachyond ($TACHYOND) with tiny
                                              session queues, so subscribers fall behind: no
                                              QoS 1/2 message may be lost (back-pressure); idle
                                              connections (memory)
    test_loadgen.py LOADGEN RELAY failures    the load generator must FAIL (non-zero exit, JSON
                                              "ok": false, no figure) against a server answering
                                              garbage, a silent server, unanswered PINGREQs
                                              (idle), a refused port, and a broker killed in
                                              the middle of a run

Every successful run must report exactly the expected deliveries with zero loss, duplicates and
reorderings (--strict). Exit status: 0 passed, 1 failed, 77 skipped (mosquitto missing), with a
loud message. Every process started here is killed at the end; every run is bounded in time.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
failures = []


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def loadgen(lg, port, args, timeout=60):
    """Runs the load generator; returns (exit code, parsed JSON or None, stderr)."""
    cmd = [lg, "-H", "127.0.0.1", "-p", str(port), "--deadline", "45"] + args
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None, f"timed out after {timeout} s: {' '.join(cmd)}"
    out = p.stdout.strip()
    try:
        res = json.loads(out) if out else None
    except json.JSONDecodeError:
        res = None
    return p.returncode, res, p.stderr


def verdict(name, problems, err, ok_msg):
    """Records and prints one case's outcome; ok_msg() is only evaluated when it passed."""
    if problems:
        failures.append(name)
        log(f"FAIL {name}: {'; '.join(problems)}\n{err}")
    else:
        log(f"ok   {name}: {ok_msg()}")


def check_ok(name, lg, port, args, sent, delivered):
    rc, res, err = loadgen(lg, port, args + ["--strict", "--scenario", name])
    problems = []
    if rc != 0:
        problems.append(f"exit {rc}")
    if not res or res.get("ok") is not True:
        problems.append(f"result not ok: {res.get('error') if res else 'no JSON'}")
    else:
        pub, sub = res["pub"], res["sub"]
        if pub["sent"] != sent:
            problems.append(f"sent {pub['sent']} != {sent}")
        if pub["completed"] != sent:
            problems.append(f"completed {pub['completed']} != {sent}")
        if sub["expected"] != delivered or sub["delivered"] != delivered:
            problems.append(f"delivered {sub['delivered']} of {sub['expected']}, want {delivered}")
        for k in ("lost", "dups", "reorders", "stale"):
            if sub[k]:
                problems.append(f"{k} = {sub[k]}")
        if res["latency_us"]["count"] != delivered:
            problems.append(f"latency samples {res['latency_us']['count']} != {delivered}")
        for p in res["per_publisher"]:
            if p["lost"] or p["dups"] or p["reorders"]:
                problems.append(f"publisher {p['id']}: {p}")
    verdict(name, problems, err, lambda: f"sent {sent}, delivered {delivered}, lost 0, dups 0, "
            f"reorders 0, p99 {res['latency_us']['p99']:.0f} us")


def check_idle(name, lg, port, pid, n, sys_topic=None):
    """An idle run with --pid: every connection connected and answered a PINGREQ, and the
    memory figures are the broker's RSS growth over n (and its $SYS figure when asked)."""
    args = ["-t", "idle", "-c", str(n), "--hold", "2.5", "--pid", str(pid), "--scenario", name]
    rc, res, err = loadgen(lg, port, args + (["--sys-topic", sys_topic] if sys_topic else []))
    problems = []
    if rc != 0 or not res or res.get("ok") is not True:
        problems.append(f"exit {rc}: {res.get('error') if res else 'no JSON'}")
    else:
        mem = res.get("memory")
        if res["connect"]["count"] != n:
            problems.append(f"{res['connect']['count']} connections of {n}")
        if not mem or mem["broker_pid"] != pid or not mem["rss_before_kib"]:
            problems.append(f"no memory figure for pid {pid}: {mem}")
        elif mem["bytes_per_conn"] != round((mem["rss_after_kib"] - mem["rss_before_kib"])
                                            * 1024 / n):
            problems.append(f"bytes_per_conn is not (after - before) / n: {mem}")
        if sys_topic:
            s = res.get("broker_sys") or {}
            # The broker holds n more connections: its own heap figure must have grown.
            if s.get("topic") != sys_topic or s.get("after") is None or \
                    not s.get("bytes_per_conn", 0) > 0:
                problems.append(f"no $SYS growth figure from {sys_topic}: {s}")
    verdict(name, problems, err, lambda: f"{n} connections pinged, broker RSS "
            f"{res['memory']['rss_before_kib']} -> {res['memory']['rss_after_kib']} KiB"
            + (f", $SYS {res['broker_sys']['before']} -> {res['broker_sys']['after']}"
               if sys_topic else ""))


def check_fails(name, lg, port, args, want_in_error, timeout=60):
    rc, res, err = loadgen(lg, port, args, timeout)
    problems = []
    if rc is None:
        problems.append(err)
    elif rc == 0:
        problems.append("exit status 0")
    if res is None:
        problems.append("no JSON result")
    else:
        if res.get("ok") is not False:
            problems.append("ok is not false")
        for k in ("pub", "sub", "latency_us", "connect"):
            if k in res:
                problems.append(f"a figure was reported: '{k}'")
        if want_in_error not in res.get("error", ""):
            problems.append(f"error {res.get('error')!r} does not mention {want_in_error!r}")
    verdict(name, problems, err, lambda: f"exit {rc}: {res['error']}")


def start_mosquitto(tmp):
    port = free_port()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                "max_inflight_messages 1000\nmax_queued_messages 100000\n"
                "set_tcp_nodelay true\npersistence false\nsys_interval 1\n")
    proc = subprocess.Popen([shutil.which("mosquitto"), "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "m.log"), "w"))
    wait_port(port, proc)
    return proc, port


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def mosquitto_cases(lg, port, pid):
    r = ["-r", "2000"]
    check_ok("mosq pairs qos0 v5", lg, port, ["-q", "0", "-P", "2", "-n", "500"] + r, 1000, 1000)
    check_ok("mosq pairs qos1 v3.1.1", lg, port,
             ["-q", "1", "-V", "3", "-P", "2", "-n", "500"] + r, 1000, 1000)
    check_ok("mosq pairs qos2 v5", lg, port, ["-q", "2", "-P", "2", "-n", "500"] + r, 1000, 1000)
    check_ok("mosq pairs qos1 1KiB as-fast", lg, port,
             ["-q", "1", "-P", "2", "-n", "2000", "-s", "1024", "-r", "0"], 4000, 4000)
    check_ok("mosq fanout 1->20 qos1", lg, port,
             ["-t", "fanout", "-q", "1", "-S", "20", "-n", "200", "-r", "500"], 200, 4000)
    check_ok("mosq wildcard fan-in 5->1 qos1", lg, port,
             ["-t", "wildcard", "-q", "1", "-P", "5", "-S", "1", "-n", "200"] + r, 1000, 1000)
    check_ok("mosq fan-in 4->1 qos2 v3.1.1", lg, port,
             ["-t", "fanin", "-q", "2", "-V", "3", "-P", "4", "-n", "200"] + r, 800, 800)
    check_ok("mosq shared 4 pubs -> 3 members qos1", lg, port,
             ["-t", "shared", "-q", "1", "-P", "4", "-S", "3", "-n", "200"] + r, 800, 800)
    check_idle("mosq idle 300 with $SYS heap", lg, port, pid, 300, "$SYS/broker/heap/current")


def relay_cases(lg, port, pid):
    r = ["-r", "4000"]
    # --pid: both sides' CPU time over the publish phase is reported.
    rc, res, err = loadgen(lg, port, ["-q", "0", "-P", "2", "-n", "2000", "--pid", str(pid)] + r)
    cpu = (res or {}).get("cpu") or {}
    bad = rc != 0 or not cpu.get("window_s") or cpu.get("loadgen_s") is None or \
        cpu.get("broker_s") is None or cpu.get("loadgen_ns_per_delivery") is None
    verdict("relay cpu figures", [f"exit {rc}, cpu {cpu}"] if bad else [], err, lambda: f"{cpu}")
    check_ok("relay pairs qos0", lg, port, ["-q", "0", "-P", "2", "-n", "1000"] + r, 2000, 2000)
    check_ok("relay pairs qos1 v3.1.1", lg, port,
             ["-q", "1", "-V", "3", "-P", "2", "-n", "1000"] + r, 2000, 2000)
    check_ok("relay pairs qos2", lg, port, ["-q", "2", "-P", "2", "-n", "1000"] + r, 2000, 2000)
    check_ok("relay pairs qos0 as-fast", lg, port, ["-q", "0", "-P", "2", "-n", "20000", "-r", "0"],
             40000, 40000)
    check_ok("relay fanout 1->50 qos0", lg, port,
             ["-t", "fanout", "-S", "50", "-n", "200", "-r", "1000"], 200, 10000)
    check_ok("relay fan-in 5->1 qos0", lg, port, ["-t", "fanin", "-P", "5", "-n", "200"] + r,
             1000, 1000)


class FakeServer:
    """A TCP server on loopback that answers each connection with a fixed behaviour."""

    def __init__(self, reply):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.done = False
        self.conns = []
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            try:
                c.settimeout(2)
                c.recv(4096)
                if self.reply:
                    c.sendall(self.reply)
            except OSError:
                pass

    def close(self):
        self.done = True
        self.t.join()
        for c in self.conns:
            c.close()
        self.sock.close()


def failure_cases(lg, tmp):
    # CONNACK accepted, then bytes that are not MQTT.
    garbage = FakeServer(b"\x20\x02\x00\x00\xff\xff\xff\xff\xffgarbage")
    try:
        check_fails("garbage after CONNACK", lg, garbage.port,
                    ["-V", "3", "-n", "100", "-d", "2", "--connect-timeout", "5"],
                    "protocol error")
    finally:
        garbage.close()
    # A CONNACK that refuses the connection.
    refuse = FakeServer(b"\x20\x03\x00\x87\x00")
    try:
        check_fails("CONNACK refused", lg, refuse.port, ["-n", "100", "--connect-timeout", "5"],
                    "CONNACK refused")
    finally:
        refuse.close()
    # A server that accepts TCP and never answers.
    silent = FakeServer(None)
    try:
        check_fails("silent server", lg, silent.port, ["-n", "100", "--connect-timeout", "1"],
                    "connections were ready")
    finally:
        silent.close()
    # Connections accepted with a CONNACK whose PINGREQ is never answered: an idle run
    # must not sample memory before the broker has handled a packet on every connection.
    deaf = FakeServer(b"\x20\x03\x00\x00\x00")
    try:
        check_fails("idle PINGREQ unanswered", lg, deaf.port,
                    ["-t", "idle", "-c", "5", "--connect-timeout", "1"], "PINGREQ answered")
    finally:
        deaf.close()
    # Addresses outside loopback are refused before anything is sent, --netns-local included
    # when this process is not in a namespace made by `ip netns add`.
    for extra in ([], ["--netns-local"]):
        name = "non-loopback address refused" + (" (--netns-local)" if extra else "")
        rc, res, err = loadgen(lg, 1883, ["-H", "10.1.2.3", "-n", "1"] + extra, timeout=10)
        problems = []
        if rc in (None, 0):
            problems.append(f"exit status {rc}")
        if res is not None:
            problems.append("a JSON result was written")
        if "refusing" not in err:
            problems.append("stderr does not say it refuses the address")
        verdict(name, problems, err, lambda: err.strip().splitlines()[-1])
    # Nobody listening.
    check_fails("connection refused", lg, free_port(), ["-n", "100"], "Connection refused")
    # A real broker killed in the middle of the publish phase.
    mosq_bin = shutil.which("mosquitto")
    if not mosq_bin:
        log("SKIPPED part: 'broker killed mid-run' needs mosquitto, which is not installed")
        return
    proc, port = start_mosquitto(tmp)
    try:
        killer = threading.Timer(1.5, lambda: proc.kill())
        killer.start()
        check_fails("broker killed mid-run", lg, port,
                    ["-q", "1", "-r", "1000", "-d", "5", "--drain", "2"], "the broker")
        killer.join()
    finally:
        stop(proc)


def tachyon_cases(lg, port):
    # max_queued_messages 16: every subscriber's queue overflows at full speed. QoS 1/2 that
    # the broker acknowledged must still all arrive (acks are held back instead).
    n = 20000
    for q in (1, 2):
        for v in ("5", "3"):
            check_ok(f"tachyon pairs QoS {q} MQTT {v} over tiny queues", lg, port,
                     ["-t", "pairs", "-P", "4", "-q", str(q), "-V", v, "-r", "0", "-n", str(n),
                      "--inflight", "256", "-d", "30", "--drain", "5"], 4 * n, 4 * n)
    check_ok("tachyon fan-in 8->1 QoS 1 over a tiny queue", lg, port,
             ["-t", "fanin", "-P", "8", "-S", "1", "-q", "1", "-r", "0", "-n", "5000",
              "-d", "30", "--drain", "5"], 8 * 5000, 8 * 5000)


def start_tachyond(tmp):
    exe = os.environ.get("TACHYOND")
    if not exe or not os.access(exe, os.X_OK):
        raise RuntimeError(f"TACHYOND is not an executable: {exe!r}")
    for _ in range(5):  # a free port may be taken before tachyond binds it: retry
        port = free_port()
        proc = subprocess.Popen([exe, "--bind", "127.0.0.1", "--port", str(port), "--workers", "2",
                                 "--set", "max_queued_messages=16", "--set", "max_inflight=8"],
                                stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(tmp, "t.log"), "w"))
        try:
            wait_port(port, proc)
            return proc, port
        except RuntimeError:
            stop(proc)
    raise RuntimeError("tachyond did not start")


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("mosquitto", "relay", "tachyon", "failures"):
        print(__doc__, file=sys.stderr)
        return 2
    lg, relay, what = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix="tachyon-lg-")
    proc = None
    try:
        if what == "mosquitto":
            if not shutil.which("mosquitto"):
                log("SKIPPED: mosquitto is not installed (Debian package 'mosquitto'); "
                    "the load generator was NOT tested against it")
                return SKIP
            proc, port = start_mosquitto(tmp)
            mosquitto_cases(lg, port, proc.pid)
            if proc.poll() is not None:
                failures.append("mosquitto died during the tests")
        elif what == "relay":
            pf = os.path.join(tmp, "port")
            proc = subprocess.Popen([relay, "--port", "0", "--port-file", pf, "--deadline", "300"],
                                    stdout=subprocess.DEVNULL)
            end = time.monotonic() + 10
            while not (os.path.exists(pf) and open(pf).read().strip()):
                if time.monotonic() > end or proc.poll() is not None:
                    raise RuntimeError("bench_relay did not start")
                time.sleep(0.05)
            relay_cases(lg, int(open(pf).read()), proc.pid)
            if proc.poll() is not None:
                failures.append("bench_relay died during the tests")
        elif what == "tachyon":
            proc, port = start_tachyond(tmp)
            tachyon_cases(lg, port)
            check_idle("tachyon idle 300", lg, port, proc.pid, 300)
            if proc.poll() is not None:
                failures.append("tachyond died during the tests")
        else:
            failure_cases(lg, tmp)
    finally:
        stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        log(f"{len(failures)} case(s) FAILED: {', '.join(failures)}")
        return 1
    log("all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
