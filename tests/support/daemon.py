"""Running the real portcullisd for the tests that drive the daemon (tests/faults, tests/etcd): a
temporary directory per test, rule files and an INI configuration written into it, the daemon started
on virtual devices, waits for what it logs, a stop with a bounded wait, its final summary read, the CLI
called. No NIC, no hugepages, one --file-prefix per daemon so that tests can run side by side.
meson puts this folder on the tests' PYTHONPATH (tests/support/meson.build)."""
import json
import os
import re
import shutil
import signal
import subprocess
import struct
import sys
import tempfile
import time


class Failure(Exception):
    pass


def fail(message):
    raise Failure(message)


def run_test(steps, prefix):
    """Runs steps(work) with `work` a new temporary directory (its name starts with prefix), removed at
    the end with every daemon still running killed; prints FAIL and exits 1 on a Failure, so that meson
    shows why. A SIGTERM (meson's timeout) is a Failure too, so that temporary files go and no daemon is
    left polling a core."""
    def on_sigterm(signum, frame):
        raise Failure("the test was stopped (SIGTERM: meson's timeout?)")
    signal.signal(signal.SIGTERM, on_sigterm)
    work = tempfile.mkdtemp(prefix=prefix)
    try:
        steps(work)
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        sys.exit(1)
    finally:
        for d in Daemon.started:
            d.kill()
        shutil.rmtree(work, ignore_errors=True)


def write_rules(path, text):
    """Writes a rules file whole; returns its path."""
    with open(path, "w") as f:
        f.write(text)
    return path


def pcap_packets(path):
    data = open(path, "rb").read()
    at, n = 24, 0
    while at + 16 <= len(data):
        at += 16 + struct.unpack_from("<I", data, at + 8)[0]
        n += 1
    return n


SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
                   "ThreadSanitizer", "Segmentation fault", "terminate called")


class Daemon:
    """One portcullisd process; stdout and stderr go to files in `work`."""
    started = []  # every daemon of this test, killed at the end if still running

    def __init__(self, binary, args, work, name):
        self.name = name
        self.out_path = os.path.join(work, name + ".out")
        self.err_path = os.path.join(work, name + ".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([binary] + args, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.returncode = None
        Daemon.started.append(self)

    def stdout(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def tail(self, n=30):
        lines = (self.stdout().splitlines() + ["--- stderr:"] + self.stderr().splitlines())
        return "\n".join(lines[-n:])

    def alive(self):
        return self.proc.poll() is None

    def wait_for(self, pattern, timeout=60, stream="stdout"):
        """Waits until the daemon has logged a line matching pattern; returns the match. Fails if it
        exits first or the wait runs out (a liveness bound, not a timing expectation)."""
        regex = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(self.stdout() if stream == "stdout" else self.stderr())
            if m:
                return m
            if not self.alive():
                fail(f"{self.name} exited ({self.proc.returncode}) before logging /{pattern}/:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.kill()
                fail(f"{self.name} did not log /{pattern}/ within {timeout} s:\n{self.tail()}")
            time.sleep(0.005)

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout=60):
        """Waits for the daemon to exit by itself; SIGKILLs it and fails if it does not within timeout."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail(f"{self.name} did not exit within {timeout} s of being told to stop (SIGKILLed):\n{self.tail()}")
        return self.returncode

    def stop(self, timeout=60):
        """SIGTERM, then the checks every clean stop must pass: exit status 0, the final summary printed,
        no sanitizer report. Returns the parsed summary."""
        self.signal(signal.SIGTERM)
        self.check_clean_exit(timeout)
        return final_summary(self)

    def check_clean_exit(self, timeout=60):
        rc = self.wait_exit(timeout)
        if rc != 0:
            what = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
            fail(f"{self.name}: {what}, not 0:\n{self.tail()}")
        text = self.stdout() + self.stderr()
        for mark in SANITIZER_MARKS:
            if mark in text:
                fail(f"{self.name}: '{mark}' in its output:\n{self.tail(60)}")

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()


SUMMARY_RULES = re.compile(r"^rules: generation (\d+), (\d+) rules, digest ([0-9a-f]{16}), source (config|push|etcd) (\S+)",
                           re.M)
RULE_LINE = re.compile(r"^\s+\d+ pkts\s+\d+ bytes\s+(\S+):(\d+)\s")


def final_summary(d):
    """The final counters: the identity of the active rule set and the rules listed under it."""
    out = d.stdout()
    at = out.find("portcullisd: stopped; final counters")
    if at < 0:
        fail(f"{d.name}: no final summary:\n{d.tail()}")
    tail = out[at:]
    m = SUMMARY_RULES.search(tail)
    if not m:
        fail(f"{d.name}: the final summary does not name the active rule set:\n{tail[:2000]}")
    listed = []
    for line in tail[m.end():].splitlines()[1:]:
        r = RULE_LINE.match(line)
        if not r:
            break
        listed.append((r.group(1), int(r.group(2))))
    return {"generation": int(m.group(1)), "count": int(m.group(2)), "digest": m.group(3), "origin": m.group(4),
            "file": m.group(5), "listed": listed, "text": tail}


def rule_lines(path):
    """(path, line) of every rule statement of a generated file (one statement per line, no includes)."""
    with open(path) as f:
        return [(path, n) for n, line in enumerate(f, 1) if line.split()[:1] and line.split()[0] in ("allow", "drop", "reject")]


def cli(binary, socket, *args, timeout=30):
    """Runs `portcullis --socket S --json ARGS`; returns (exit status, the JSON answer or None, raw stdout)."""
    try:
        p = subprocess.run([binary, "--socket", socket, "--json", "--timeout", str(timeout)] + list(args),
                           capture_output=True, text=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        fail(f"portcullis {' '.join(args)} hung")
    lines = p.stdout.splitlines()
    answer = None
    if len(lines) == 1:
        try:
            answer = json.loads(lines[0])
        except ValueError:
            pass
    return p.returncode, answer, p.stdout


def cli_ok(binary, socket, *args, timeout=30):
    """cli(), failing unless the CLI exits 0 with a JSON answer that says ok; returns the answer."""
    rc, answer, out = cli(binary, socket, *args, timeout=timeout)
    if rc != 0 or not answer or not answer.get("ok"):
        fail(f"portcullis {' '.join(args)}: exit {rc}: {out}")
    return answer


def eal_replay(prefix, capture, lcores="0-1", infinite=True):
    """EAL arguments: the capture replayed on the outside port (forever with infinite), a sink inside."""
    rx = f"net_pcap0,rx_pcap={capture}" + (",infinite_rx=1" if infinite else "")
    return (f"-l {lcores} --no-huge -m 512 --no-pci --no-shconf --no-telemetry --file-prefix={prefix} "
            f"--log-level=warning --vdev={rx} --vdev=net_null0,no-rx=1")


REPLAY_PORTS = ["--ports.outside", "net_pcap0", "--ports.inside", "net_null0", "--ports.mode", "replay",
                "--ports.inside-networks", "198.18.1.0/24, 2001:2:0:1::/64", "--queues.mbufs", "16383"]


def write_replay_config(work, rules, prefix, capture, infinite=True, extra="", metrics=""):
    """Writes work/portcullisd.conf, an INI configuration: the rules file, the capture replayed on the
    outside port (once, or forever with infinite) into a sink inside, the control socket
    work/control.sock. One lcore: the worker on the main lcore, the control loop on a thread of its own.
    `extra` is appended (more sections); `metrics` is the exporter's address ('' for none). Returns the
    paths of the configuration and of the socket."""
    conf, sock = os.path.join(work, "portcullisd.conf"), os.path.join(work, "control.sock")
    with open(conf, "w") as f:
        f.write(f"""rules = {rules}
[eal]
args = {eal_replay(prefix, capture, lcores="0", infinite=infinite)}
[ports]
outside = net_pcap0
inside = net_null0
mode = replay
inside-networks = 198.18.1.0/24, 2001:2:0:1::/64
[control]
socket = {sock}
[metrics]
listen = {metrics}
{extra}""")
    return conf, sock
