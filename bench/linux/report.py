#!/usr/bin/env python3
"""bench-linux's JSON lines (bench-linux.sh calls it).

report.py --way W --case C --rep N --seconds S --dir WORK --cpus TEXT --profile TEXT --machine TEXT --out FILE
    One line for a (way, case, rep), from WORK/client.json and WORK/server.json (iperf3 -J), the host
    counters WORK/host.before|after and, for the daemon ways, `portcullis stats --json` in
    WORK/stats.before|mid|after. The headline value (gbps or pps) is appended to FILE, one per rep.
report.py --ratio CASE OURS BASELINE OURS_FILE BASELINE_FILE
    One line with ratio = median(ours) / median(baseline) over the reps (null when either is missing).
"""
import argparse
import json
import statistics
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_counters(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    try:
                        out[parts[0]] = int(parts[1])
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def emit(fields):
    print(json.dumps(fields, separators=(",", ":")), flush=True)


def daemon_fields(before, mid, after):
    """The daemon's busy ratio halfway through, and what it received and dropped during the case."""
    out = {}
    if mid and mid.get("workers"):
        out["busy_ratio"] = round(mid["workers"][0].get("busy_ratio", 0.0), 3)
    if before and after:
        drops = {}
        for k, v in after.get("drops", {}).items():
            d = v - before.get("drops", {}).get(k, 0)
            if d:
                drops[k] = d
        out["daemon_drops"] = drops
        rx = sum(p["rx_packets"] for p in after["ports"]) - sum(p["rx_packets"] for p in before["ports"])
        out["daemon_rx_packets"] = rx
    return out


def case_line(a):
    client = load(f"{a.dir}/client.json")
    server = load(f"{a.dir}/server.json")
    hb = load_counters(f"{a.dir}/host.before")
    ha = load_counters(f"{a.dir}/host.after")

    def delta(key):
        return ha[key] - hb[key] if key in ha and key in hb else None

    line = {"bench": "linux", "case": a.case, "way": a.way, "rep": a.rep}
    value = None
    err = (client or {}).get("error") or (server or {}).get("error")
    if a.case == "tcp":
        try:
            end = client["end"]
            value = end["sum_received"]["bits_per_second"] / 1e9
            line["gbps"] = round(value, 3)
            line["retransmits"] = end["sum_sent"].get("retransmits")
        except (TypeError, KeyError):
            line["gbps"] = None
    else:
        try:
            s = server["end"]["sum"]
            received = s["packets"] - s["lost_packets"]
            secs = s["seconds"]
            value = received / secs
            sent = client["end"]["sum_sent"]["packets"]
            line["pps"] = round(value)
            line["received"] = received
            line["sent"] = sent
            line["sent_pps"] = round(sent / client["end"]["sum_sent"]["seconds"])
            # Frames that reached the server's interface (what the middle forwarded, the few TCP control
            # segments included), and datagrams its socket dropped because iperf3 did not read in time.
            arrived = delta("server_rx")
            if arrived is not None:
                line["arrived_pps"] = round(arrived / secs)
            rcvbuf = delta("server_udp_RcvbufErrors")
            if rcvbuf is not None:
                line["socket_drops"] = rcvbuf
            line["loss"] = round(1 - received / sent, 4) if sent else None
            line["payload"] = 64
        except (TypeError, KeyError, ZeroDivisionError):
            line["pps"] = None
    if err:
        line["error"] = err
    line["seconds"] = a.seconds
    if a.way != "nft":
        line.update(daemon_fields(load(f"{a.dir}/stats.before"), load(f"{a.dir}/stats.mid"),
                                  load(f"{a.dir}/stats.after")))
    try:
        with open("/proc/loadavg") as f:
            line["loadavg"] = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    line["profile"] = a.profile
    line["cpus"] = a.cpus
    line["machine"] = a.machine
    emit(line)
    if value is not None:
        with open(a.out, "a") as f:
            f.write(repr(value) + "\n")


def ratio_line(case, ours, baseline, ours_file, nft_file):
    def values(path):
        try:
            with open(path) as f:
                return [float(x) for x in f.read().split()]
        except (OSError, ValueError):
            return []

    def rnd(v):
        if v is None:
            return None
        return round(v, 3) if case == "tcp" else round(v)

    a, b = values(ours_file), values(nft_file)
    ma = statistics.median(a) if a else None
    mb = statistics.median(b) if b else None
    line = {"bench": "linux", "case": case, "unit": "gbps" if case == "tcp" else "pps", "ours": ours,
            "baseline": baseline, "ours_value": rnd(ma), "baseline_value": rnd(mb),
            "ratio": round(ma / mb, 3) if ma is not None and mb else None, "goal": 1.0,
            "reps": min(len(a), len(b))}
    if len(a) > 1 or len(b) > 1:
        line["ours_each"] = [rnd(v) for v in a]
        line["baseline_each"] = [rnd(v) for v in b]
    emit(line)


def main(argv):
    if len(argv) > 1 and argv[1] == "--ratio":
        ratio_line(*argv[2:7])
        return
    p = argparse.ArgumentParser()
    for name in ("way", "case", "dir", "cpus", "profile", "machine", "out"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--rep", type=int, required=True)
    p.add_argument("--seconds", type=int, required=True)
    case_line(p.parse_args(argv[1:]))


if __name__ == "__main__":
    main(sys.argv)
