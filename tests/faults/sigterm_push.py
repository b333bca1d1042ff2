#!/usr/bin/env python3
"""SIGTERM during a rule push leaves nothing half-applied.

The real portcullisd forwards a replayed capture (forever, into a sink) under a small rule set A; the CLI
pushes a large generated set B (compiling it takes a noticeable time) and the daemon gets SIGTERM at a
different point of the push in each round: before the push, while the daemon reads the file, while it
compiles (several delays), right after it published, after the CLI got its answer. Each round asserts:

- the daemon exits by itself, status 0, no sanitizer report, within a bounded wait (else SIGKILL: fail);
- its final summary names the active rule set, and it is A or B, complete: generation, rule count and
  digest of one of them, every rule of that file listed and nothing else;
- the CLI printed one JSON answer: success (then the daemon ended with B), or a clean error (the daemon
  refused the push as abandoned, or could not be reached; then it ended with A), never a garbled one.

Across the rounds, at least one push must have been abandoned after its compile began (the old set
stayed) and at least one must have been published.

Usage: PYTHONPATH=tests/support sigterm_push.py PORTCULLISD PORTCULLIS CAPTURE
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

from daemon import REPLAY_PORTS, Daemon, eal_replay, fail, final_summary, rule_lines, run_test, write_rules

daemon_bin, cli_bin, capture = sys.argv[1:4]
BIG_RULES = 60_000

OLD_RULES = """default in drop
default out allow
allow in tcp to 198.18.1.10 port { ssh, http, https } counter server-tcp
allow in udp to 198.18.1.10 port { dns, ntp }
allow in icmp
reject in tcp to 198.18.1.0/24 port telnet
allow out from 198.18.1.0/24
"""


def write_big(path):
    rng = random.Random(6)
    with open(path, "w") as f:
        f.write("default in drop\ndefault out allow\n")
        for _ in range(BIG_RULES):
            f.write(f"drop in tcp from 10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} "
                    f"to 198.18.1.{rng.randrange(256)} port {rng.randrange(1, 65536)}\n")
        f.write("allow in tcp to 198.18.1.10 port { ssh, http, https }\nallow out from 198.18.1.0/24\n")


def rounds(work):
    old = write_rules(os.path.join(work, "old.rules"), OLD_RULES)
    big = os.path.join(work, "big.rules")
    write_big(big)
    expected = {"config": rule_lines(old), "push": rule_lines(big)}
    identity = {}  # origin -> (generation, count, digest), learnt from the first round that ends with it

    # (point, delay after reaching it): the first round publishes, so that B's identity is known.
    plan = [("answered", 0), ("before", 0), ("reading", 0), ("compiling", 0), ("compiling", 0.15),
            ("compiling", 0.35), ("published", 0)]
    outcomes = []
    for n, (point, delay) in enumerate(plan):
        name = f"round{n}-{point}-{delay}"
        sock = os.path.join(work, f"{name}.sock")
        d = Daemon(daemon_bin, ["--rules", old] + REPLAY_PORTS +
                   ["--control.socket", sock, "--metrics.listen", "",
                    "--eal.args", eal_replay(f"pcfault{os.getpid()}r{n}", capture)], work, name)
        start = d.wait_for(r"^portcullisd: rules: generation 1 active: (\d+) rules, digest ([0-9a-f]{16})")
        identity.setdefault("config", (1, int(start.group(1)), start.group(2)))

        push = None
        started = time.monotonic()

        def launch():
            return subprocess.Popen([cli_bin, "--socket", sock, "--json", "--timeout", "120", "push", big],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if point == "before":
            d.signal(signal.SIGTERM)
            push = launch()
        else:
            push = launch()
            marks = {"reading": r"^portcullisd: rules: reading .*big\.rules \(push\)",
                     "compiling": r"^portcullisd: rules: .*big\.rules: \d+ rules parsed, compiling",
                     "published": r"^portcullisd: rules: generation 2 active"}
            if point in marks:
                d.wait_for(marks[point])
            else:
                push.wait(timeout=130)
            time.sleep(delay)
            d.signal(signal.SIGTERM)
        d.check_clean_exit(timeout=60)
        try:
            out, err = push.communicate(timeout=130)
        except subprocess.TimeoutExpired:
            push.kill()
            fail(f"{name}: the CLI hung after the daemon stopped")
        s = final_summary(d)

        # The active rule set at exit: A or B, whole.
        origin = s["origin"]
        if origin not in expected:
            fail(f"{name}: unexpected source {origin}")
        want_file = old if origin == "config" else big
        if s["file"] != want_file:
            fail(f"{name}: summary names {s['file']}, expected {want_file}")
        got = (s["generation"], s["count"], s["digest"])
        identity.setdefault(origin, got)
        if got != identity[origin]:
            fail(f"{name}: active set at exit {got} is neither A {identity.get('config')} nor B {identity.get('push')}")
        if s["listed"] != expected[origin] or s["count"] != len(expected[origin]):
            fail(f"{name}: the summary lists {len(s['listed'])} rules of {s['count']}; {want_file} has "
                 f"{len(expected[origin])}: a partial rule set")

        # The CLI: one JSON answer, consistent with what the daemon ended with.
        lines = out.splitlines()
        if len(lines) != 1:
            fail(f"{name}: the CLI printed {len(lines)} lines, expected one JSON answer: {out!r} {err!r}")
        try:
            answer = json.loads(lines[0])
        except ValueError:
            fail(f"{name}: the CLI printed garbage: {out!r}")
        rc = push.returncode
        if rc == 0:
            if not answer.get("ok") or origin != "push" or answer.get("digest") != s["digest"] or \
                    answer.get("rules") != s["count"]:
                fail(f"{name}: the CLI reported success ({answer}) but the daemon ended with {origin} {got}")
            outcome = "published"
        elif rc == 1 and answer.get("code") == "failed" and "stopping" in answer.get("error", ""):
            if origin != "config":
                fail(f"{name}: the push was answered as abandoned, but the daemon ended with the new set")
            compiling = "big.rules: %d rules parsed, compiling" % len(expected["push"]) in d.stdout()
            outcome = "abandoned after compile began" if compiling else "abandoned before compiling"
            if "abandoned (stopping)" not in d.stdout():
                fail(f"{name}: the daemon's log does not say the push was abandoned:\n{d.tail()}")
        elif rc == 3 and answer.get("code") == "unreachable":
            if origin != "config":
                fail(f"{name}: the CLI could not reach the daemon, yet the daemon ended with the pushed set")
            outcome = "unreachable"
        else:
            fail(f"{name}: the CLI exited {rc} with {answer} (stderr {err!r}): neither success nor a clean error")
        outcomes.append(outcome)
        print(f"ok {n + 1} - SIGTERM {point} +{delay}s: {outcome}; exit 0 with generation {s['generation']} "
              f"({s['count']} rules, digest {s['digest']}), round {time.monotonic() - started:.1f} s", flush=True)

    if "published" not in outcomes:
        fail("no round published the new set")
    if "abandoned after compile began" not in outcomes:
        fail("no push was abandoned once its compile had begun: a SIGTERM while compiling must keep the old "
             f"set, not publish the new one after the stop (outcomes: {outcomes})")
    print(f"sigterm-push: {len(plan)} rounds, no half-applied rule set")


run_test(rounds, "pcfaults-")
