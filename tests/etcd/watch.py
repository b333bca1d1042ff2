#!/usr/bin/env python3
"""portcullisd following an etcd key (rules.watch), against a real etcd server and the real CLI.

etcd runs on loopback ports of its own with a data directory in a temporary directory; the daemon
replays a capture on virtual devices (no NIC, no hugepages). Checked, in order:

1. The daemon starts on its configured file while the key is empty (source config).
2. `portcullis publish` refuses a file with an include, and a file with errors, without writing etcd.
3. `portcullis publish` of a good file: the daemon swaps it in (source etcd, the revision publish
   printed, the rules of that file); stats and the metrics say the watch is connected, at that revision.
4. A broken revision written straight to etcd (as a careless script would): refused with its errors as
   etcd://...@REVISION:LINE:COLUMN, the running rules stay, the refusal is counted. An include is refused.
5. Deleting the key keeps the running rules.
6. etcd stopped: the daemon keeps running and enforcing, and stats, the CLI and the metrics say the
   watch is not connected; etcd back and a new revision published: the daemon catches up.
7. SIGTERM: clean exit, the summary names the etcd set. Restart with the same configuration: the daemon
   starts on the file, then takes the key's current value again.

Usage: PYTHONPATH=tests/support watch.py PORTCULLISD PORTCULLIS CAPTURE ETCD
Exit 77 (skipped) when ETCD is not an executable (Debian package etcd-server).
"""
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from daemon import Daemon, cli, cli_ok, fail, run_test, write_replay_config, write_rules

daemon_bin, cli_bin, capture, etcd_bin = sys.argv[1:5]

FILE_RULES = """# The appliance's own file: what it starts with and falls back to.
default in drop
default out allow
allow in tcp to 198.18.1.10 port { ssh, https }
allow out from 198.18.1.0/24
"""
FLEET_RULES = """# The fleet's set, published to etcd.
default in drop
default out allow
allow in tcp to 198.18.1.10 port { ssh, http, https } counter web
allow in udp to 198.18.1.10 port dns
drop in tcp to any port 31337 counter backdoor
allow out from 198.18.1.0/24
"""
FLEET_RULES_2 = FLEET_RULES + "allow in icmp icmp-type echo-request\n"
BROKEN = FLEET_RULES + "allow in tcp to any port 99999\n"  # line 8, column 26


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    def __init__(self, work):
        self.data = os.path.join(work, "etcd-data")
        self.log = os.path.join(work, "etcd.log")
        self.client, self.peer = free_port(), free_port()
        self.proc = None

    def url(self, key):
        return f"etcd://127.0.0.1:{self.client}/{key}"

    def start(self):
        client, peer = f"http://127.0.0.1:{self.client}", f"http://127.0.0.1:{self.peer}"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [etcd_bin, "--name", "t", "--data-dir", self.data, "--listen-client-urls", client,
                 "--advertise-client-urls", client, "--listen-peer-urls", peer,
                 "--initial-advertise-peer-urls", peer, "--initial-cluster", f"t={peer}"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.call("/v3/kv/range", {"key": b64("probe")})
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    fail("etcd did not come up:\n" + open(self.log, errors="replace").read()[-2000:])
                time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def call(self, path, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.client}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def put(self, key, text):
        return int(self.call("/v3/kv/put", {"key": b64(key), "value": b64(text)})["header"]["revision"])

    def get(self, key):
        kvs = self.call("/v3/kv/range", {"key": b64(key)}).get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def delete(self, key):
        return int(self.call("/v3/kv/deleterange", {"key": b64(key)})["header"]["revision"])


def b64(text):
    return base64.b64encode(text.encode()).decode()


def wait_until(what, predicate, timeout=30):
    """A liveness bound, not a timing expectation: the daemon looks at the key every 20 ms."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            fail(f"gave up waiting ({timeout} s) for {what}")
        time.sleep(0.05)


def rules_answer(sock):
    return cli_ok(cli_bin, sock, "rules")


def counters(answer):
    return sorted(r.get("counter", "") for r in answer["rules"])


def scrape(address):
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
        return r.read().decode()


def main(work):
    server = Etcd(work)
    try:
        steps(work, server)
    finally:
        server.stop()


def steps(work, server):
    key = "portcullis/site-a"
    url = server.url(key)
    rules = write_rules(os.path.join(work, "local.rules"), FILE_RULES)
    fleet = write_rules(os.path.join(work, "fleet.rules"), FLEET_RULES)
    metrics = f"127.0.0.1:{free_port()}"
    conf, sock = write_replay_config(work, rules, f"pcetcd{os.getpid()}", capture,
                                     extra=f"[rules]\nwatch = {url}\n", metrics=metrics)
    server.start()

    # 1. An empty key: the configured file.
    d = Daemon(daemon_bin, ["--config", conf], work, "portcullisd-1")
    d.wait_for(r"^portcullisd: rules: following " + url.replace(".", r"\.") + "$")
    answer = rules_answer(sock)
    if answer["source"]["origin"] != "config" or len(answer["rules"]) != 2:
        fail(f"with an empty key the daemon should run its file: {answer['source']}, {len(answer['rules'])} rules")

    # 2. publish checks before it writes.
    write_rules(os.path.join(work, "included.rules"), "allow in udp to any port ntp\n")
    write_rules(os.path.join(work, "with-include.rules"), FLEET_RULES + 'include "included.rules"\n')
    write_rules(os.path.join(work, "broken.rules"), BROKEN)
    for name, expect in (("with-include.rules", "self-contained"), ("broken.rules", "broken.rules:8:26: error")):
        p = subprocess.run([cli_bin, "publish", os.path.join(work, name), url], capture_output=True, text=True)
        if p.returncode != 1 or expect not in p.stderr:
            fail(f"publish {name}: exit {p.returncode}, stderr {p.stderr!r} (expected 1 and '{expect}')")
    if server.get(key) is not None:
        fail("a refused publish wrote etcd")

    # 3. A good publish reaches the daemon.
    p = subprocess.run([cli_bin, "publish", fleet, url], capture_output=True, text=True)
    if p.returncode != 0 or "at revision" not in p.stdout:
        fail(f"publish: exit {p.returncode}: {p.stdout} {p.stderr}")
    revision = int(p.stdout.split("at revision")[1].split()[0])
    if server.get(key) != FLEET_RULES:
        fail("etcd does not hold the published text")
    answer = wait_until("the published set", lambda: (a := rules_answer(sock))["source"]["origin"] == "etcd" and a)
    src = answer["source"]
    if src["file"] != f"{url}@{revision}" or src["revision"] != revision:
        fail(f"source should be {url}@{revision}: {src}")
    if len(answer["rules"]) != 4 or not {"web", "backdoor"} <= set(counters(answer)):
        fail(f"the fleet's rules are not the ones running: {counters(answer)}")
    fleet_generation = answer["generation"]
    stats = cli_ok(cli_bin, sock, "stats")
    swaps_failed = stats["rules"]["swaps_failed"]
    watch = stats.get("rules_watch", {})
    if watch.get("url") != url or watch.get("connected") is not True or watch.get("revision") != revision:
        fail(f"stats should show the watch connected at revision {revision}: {watch}")
    page = scrape(metrics)
    for sample in (f'portcullis_rules_watch_connected{{url="{url}"}} 1', f'portcullis_rules_watch_revision{{url="{url}"}} {revision}',
                   f"portcullis_ruleset_etcd_revision {revision}"):
        if sample not in page:
            fail(f"metrics lack '{sample}'")

    # 4. A broken revision and an include, written behind publish's back: refused, nothing changes.
    bad_revision = server.put(key, BROKEN)
    d.wait_for(rf"^{url.replace('.', r'[.]')}@{bad_revision}:8:26: error", stream="stderr")
    include_revision = server.put(key, FLEET_RULES + 'include "/etc/passwd"\n')
    d.wait_for(rf"^{url.replace('.', r'[.]')}@{include_revision}:\d+:\d+: error", stream="stderr")
    d.wait_for(rf"portcullisd: rules: {url.replace('.', r'[.]')}@{include_revision} refused", stream="stderr")
    answer = rules_answer(sock)
    if answer["generation"] != fleet_generation or answer["source"]["revision"] != revision:
        fail(f"a refused revision changed the rules: generation {answer['generation']}, source {answer['source']}")
    stats = cli_ok(cli_bin, sock, "stats")
    if stats["rules"]["swaps_failed"] != swaps_failed + 2:
        fail(f"refusals not counted: {stats['rules']}")
    if stats["rules_watch"]["revision"] != include_revision:
        fail(f"the newest revision seen should be the refused {include_revision}: {stats['rules_watch']}")
    if f"portcullis_ruleset_etcd_revision {revision}" not in scrape(metrics):
        fail("a refused revision changed the active revision's metric")

    # 5. Deleting the key keeps the rules.
    gone = server.delete(key)
    d.wait_for(rf"^portcullisd: rules: {url.replace('.', r'[.]')}@{gone} deleted; the running rules")
    if rules_answer(sock)["generation"] != fleet_generation:
        fail("deleting the key changed the rules")

    # 6. etcd goes away and comes back with news.
    server.stop()
    time.sleep(0.5)
    if not d.alive():
        fail(f"the daemon died with etcd:\n{d.tail()}")
    if rules_answer(sock)["generation"] != fleet_generation:
        fail("losing etcd changed the rules")
    wait_until("stats to say the watch is not connected",
               lambda: cli(cli_bin, sock, "stats")[1]["rules_watch"]["connected"] is False)
    if f'portcullis_rules_watch_connected{{url="{url}"}} 0' not in scrape(metrics):
        fail("the metrics should say the watch is not connected")
    p = subprocess.run([cli_bin, "--socket", sock, "stats"], capture_output=True, text=True)
    if "rules.watch: " + url + " (NOT connected)" not in p.stdout:
        fail(f"portcullis stats should say the watch is not connected:\n{p.stdout}")
    server.start()
    write_rules(fleet, FLEET_RULES_2)
    p = subprocess.run([cli_bin, "publish", fleet, url], capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"publish after etcd's restart: {p.stdout} {p.stderr}")
    revision2 = int(p.stdout.split("at revision")[1].split()[0])
    # The follower retries with a backoff (0.5 s doubling); the bound is generous.
    answer = wait_until("the revision published after etcd's restart",
                        lambda: (a := rules_answer(sock))["source"].get("revision") == revision2 and a, timeout=60)
    if len(answer["rules"]) != 5:
        fail(f"expected the 5 rules of the second fleet set: {len(answer['rules'])}")

    # 7. Stop, and restart with the same configuration.
    summary = d.stop()
    if summary["origin"] != "etcd" or summary["file"] != f"{url}@{revision2}" or summary["count"] != 5:
        fail(f"the final summary should name the etcd set: {summary['text'][:400]}")
    d2 = Daemon(daemon_bin, ["--config", conf], work, "portcullisd-2")
    d2.wait_for(r"^portcullisd: rules: generation 1 active: 2 rules, .* source config ")
    answer = wait_until("the key's value after the restart",
                        lambda: (a := rules_answer(sock))["source"].get("revision") == revision2 and a)
    if answer["source"]["origin"] != "etcd" or len(answer["rules"]) != 5:
        fail(f"after a restart the daemon should take the key again: {answer['source']}")
    d2.stop()
    print("ok: file at start, publish checked, revisions followed, bad ones refused, delete and outage "
          "survived, restart takes the key again")


if __name__ == "__main__":
    if not os.access(etcd_bin, os.X_OK):
        print(f"skipped: no etcd server at '{etcd_bin}' (Debian package etcd-server)")
        sys.exit(77)
    run_test(main, "pcetcd-")
