#!/usr/bin/env python3
"""The configured rules file is the source of truth: restarts, pushes and SIGHUP.

The real portcullisd, started from an INI configuration naming its rules file, replays a capture once
(so that every run sees the same packets). Checked, in order:

1. `portcullis rules` says the rules come from the configured file.
2. A push from another file is active and reported as runtime only (source push).
3. SIGTERM: exit 0, and the final summary names the pushed set.
4. Restart with the same configuration: `portcullis rules --json` is what the first run showed before
   the push, field for field, counters included: the same rules (the push is gone) and counters that
   start again from zero (the same capture gives the same counts, not twice them; counters are not
   persisted, which is expected).
5. The rules file edited, SIGHUP: the daemon swaps to the file's new rules, reported as from the
   configured file, with the digest the same rules had when pushed from the other file.
6. The rules file broken, SIGHUP: the errors are logged as file:line:column, the daemon keeps running
   with the previous rules, the refusal is counted; `--check` (the unit's ExecStartPre) refuses the
   configuration, so a restart cannot load it either.
7. SIGTERM: exit 0, the summary names the reloaded set.

Usage: PYTHONPATH=tests/support restart.py PORTCULLISD PORTCULLIS CAPTURE
"""
import os
import signal
import subprocess
import sys
import time

from daemon import Daemon, cli_ok, fail, pcap_packets, run_test, write_replay_config, write_rules

daemon_bin, cli_bin, capture = sys.argv[1:4]

FILE_RULES = """# The configured rule set.
default in drop
default out allow
set server = { 198.18.1.10, 2001:2:0:1::10 }
allow in tcp to $server port { ssh, http, https } counter server-tcp
allow in udp to $server port { dns, ntp }
allow in icmp icmp-type { echo-request, dest-unreachable, time-exceeded }
reject in tcp to 198.18.1.0/24 port telnet counter telnet
allow out from 198.18.1.0/24
"""
# The same rules and one more: pushed from another file in the first run, written into the configured
# file in the second.
MORE_RULES = FILE_RULES + "drop in tcp to any port 31337 counter backdoor\n"
BROKEN_RULES = FILE_RULES + "allow in tcp to any port 99999\n"  # line 10, column 26: out of range


def steps(work):
    rules = write_rules(os.path.join(work, "active.rules"), FILE_RULES)
    other = write_rules(os.path.join(work, "other.rules"), MORE_RULES)
    conf, sock = write_replay_config(work, rules, f"pcrestart{os.getpid()}", capture, infinite=False)
    packets = pcap_packets(capture)
    runs = 0

    def start():
        nonlocal runs
        runs += 1
        d = Daemon(daemon_bin, ["--config", conf], work, f"run{runs}")
        d.wait_for(r"^portcullisd: rules: generation 1 active")
        return d

    def call(*args):
        return cli_ok(cli_bin, sock, *args)

    def replayed_rules():
        """`rules --json` once the whole capture has been judged: rx complete, counters settled."""
        deadline = time.monotonic() + 20
        while call("stats")["ports"][0]["rx_packets"] < packets:
            if time.monotonic() > deadline:
                fail(f"the capture's {packets} packets were not all received")
            time.sleep(0.05)
        previous = None
        while True:
            now = call("rules")
            if previous is not None and counts(now) == counts(previous):
                return now
            if time.monotonic() > deadline:
                fail("rule counters do not settle")
            previous = now
            time.sleep(0.1)

    def counts(answer):
        return [(r["packets"], r["bytes"]) for r in answer["rules"]]

    def comparable(answer):
        """The answer without what differs from one run to the next by nature: times."""
        a = dict(answer)
        a["source"] = {k: v for k, v in a["source"].items() if k != "since_unix"}
        a["rules"] = [{k: v for k, v in r.items() if k != "last_hit_seconds_ago"} for r in a["rules"]]
        return a

    def ok(what):
        print(f"ok - {what}", flush=True)

    # 1. The configured file.
    d = start()
    first = replayed_rules()
    src = first["source"]
    if (src["origin"], src["file"], src["configured"], first["generation"]) != ("config", rules, rules, 1):
        fail(f"rules at start-up should come from the configured file: {src}, generation {first['generation']}")
    if sum(p for p, _ in counts(first)) == 0:
        fail("no rule counted a packet: the capture did not go through the rules")
    ok(f"start-up: {len(first['rules'])} rules from the configured file, digest {first['digest']}")

    # 2. A push from another file: active, runtime only.
    pushed = call("push", other)
    if pushed["source"]["origin"] != "push" or pushed["source"]["file"] != other:
        fail(f"a push should be reported as runtime only: {pushed['source']}")
    text = subprocess.run([cli_bin, "--socket", sock, "rules"], capture_output=True, text=True).stdout
    if "runtime only" not in text or rules not in text:
        fail(f"`portcullis rules` does not say the pushed set is runtime only:\n{text[:500]}")
    now = call("rules")
    if now["digest"] != pushed["digest"] or now["digest"] == first["digest"] or len(now["rules"]) != len(first["rules"]) + 1:
        fail(f"after the push: digest {now['digest']} ({len(now['rules'])} rules); push said {pushed['digest']}")
    ok(f"push: generation {pushed['generation']}, digest {pushed['digest']}, reported as runtime only")

    # 3. Stop.
    s = d.stop()
    if (s["generation"], s["digest"], s["origin"], s["file"]) != (2, pushed["digest"], "push", other):
        fail(f"the final summary should name the pushed set: {s['text'][:300]}")
    ok("SIGTERM: exit 0, the summary names the pushed set (runtime only)")

    # 4. Restart with the same configuration.
    d = start()
    second = replayed_rules()
    if comparable(second) != comparable(first):
        fail(f"after a restart the rules differ from the first run's:\nfirst:  {comparable(first)}\n"
             f"second: {comparable(second)}")
    ok(f"restart: the same {len(second['rules'])} rules (digest {second['digest']}), the push reverted, counters "
       f"from zero again ({sum(p for p, _ in counts(second))} packets counted, as in the first run)")

    # 5. The configured file edited, SIGHUP.
    write_rules(rules, MORE_RULES)
    d.signal(signal.SIGHUP)
    d.wait_for(r"^portcullisd: rules: generation 2 active")
    now = call("rules")
    if (now["generation"], now["source"]["origin"], now["source"]["file"]) != (2, "config", rules):
        fail(f"after SIGHUP: generation {now['generation']}, source {now['source']}")
    if now["digest"] != pushed["digest"]:
        fail(f"the reloaded file holds the rules pushed earlier from {other}, but the digests differ: "
             f"{now['digest']} vs {pushed['digest']}")
    if [r["text"] for r in now["rules"]][-1] != "drop in tcp to any port 31337 counter backdoor":
        fail(f"the reloaded rules are not the file's: {[r['text'] for r in now['rules']]}")
    ok(f"SIGHUP after an edit: generation 2 from the configured file, digest {now['digest']}")

    # 6. The configured file broken, SIGHUP.
    write_rules(rules, BROKEN_RULES)
    d.signal(signal.SIGHUP)
    d.wait_for(rf"^{rules}:10:26: error: port 99999", stream="stderr")
    d.wait_for(r"not loaded .*the running rules \(generation 2", stream="stderr")
    if not d.alive():
        fail("the daemon stopped on a broken rules file")
    kept = call("rules")
    if (kept["generation"], kept["digest"]) != (2, now["digest"]):
        fail(f"a broken file changed the running rules: generation {kept['generation']}, digest {kept['digest']}")
    if call("stats")["rules"]["swaps_failed"] != 1:
        fail("the refused reload is not counted")
    check = subprocess.run([daemon_bin, "--config", conf, "--check"], capture_output=True, text=True)
    if check.returncode != 1 or f"{rules}:10:26" not in check.stderr:
        fail(f"--check should refuse the broken configuration: exit {check.returncode}, {check.stderr!r}")
    ok("SIGHUP with a broken file: errors logged as file:line:column, generation 2 stays, the daemon runs on")

    # 7. Stop.
    s = d.stop()
    if (s["generation"], s["digest"], s["origin"]) != (2, now["digest"], "config"):
        fail(f"the final summary should name the reloaded set: {s['text'][:300]}")
    ok("SIGTERM: exit 0, the summary names the reloaded set")
    print("restart: OK")


run_test(steps, "pcrestart-")
