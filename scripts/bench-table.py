#!/usr/bin/env python3
"""Turns benchmark JSON lines (stdin) into the markdown tables of README.md."""
import json
import sys

rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
if not rows:
    sys.exit("no JSON lines on stdin")
kind = rows[0]["bench"]
if kind == "classify":
    print("| set | rules | ours Mpps | rte_acl Mpps (method) | ratio | build ms ours / rte_acl | bytes ours / rte_acl | mismatches |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["rules"] > 5000, r["rules"] > 50000, r["case"])):
        print(f"| {r['case']} | {r['rules']} | {r['ours_mpps']:.1f} | {r['baseline_mpps']:.1f} ({r['baseline_method']}) | "
              f"**{r['ratio']:.2f}** | {r['ours_build_ms']:.0f} / {r['baseline_build_ms']:.0f} | "
              f"{r['ours_bytes'] / 1e6:.1f} M / {r['baseline_bytes'] / 1e6:.1f} M | {r['mismatches']} |")
elif kind == "flowtable":
    print("| flows | case | ours Mops | rte_hash_lf Mops | ratio | bytes/flow ours / rte_hash with state |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r["baseline"] == "rte_hash_lf":
            print(f"| {r['flows']} | {r['case']} | {r['ours_mops']:.1f} | {r['baseline_mops']:.1f} | **{r['ratio']:.2f}** | "
                  f"{r['ours_bytes_per_flow']:.0f} / {r['baseline_bytes_per_flow_with_state']:.0f} |")
elif kind == "pipeline":
    stages = ["parse", "lookup", "track", "classify", "open", "counters", "tx_prepare"]
    print("| case | ours Mpps | baseline | baseline Mpps | ratio | worker cycles/packet | driver rx / tx | "
          + " | ".join(stages) + " |")
    print("|---|---|---|---|---|---|---|" + "---|" * len(stages))
    for r in rows:
        sc = r.get("stage_cycles", {})
        print(f"| {r['case']} | {r['ours_mpps']:.2f} | {r['baseline']} | {r['baseline_mpps']:.2f} | **{r['ratio']:.2f}** | "
              f"{r.get('cycles_per_packet', 0):.0f} | {r.get('driver_rx_cycles_per_packet', 0):.0f} / "
              f"{r.get('driver_tx_cycles_per_packet', 0):.0f} | " + " | ".join(f"{sc.get(k, 0):.0f}" for k in stages) + " |")
    # What the ratio can reach against this driver (bench_pipeline.cc: ratio_if_worker_free).
    reach = [r for r in rows if r.get("baseline_cycles_per_packet") is not None]
    if reach:
        print()
        print("| case | testpmd cycles/packet | our rx + tx | ratio if the worker cost nothing | goal | worker cycles the goal needs | worker now |")
        print("|---|---|---|---|---|---|---|")
        for r in reach:
            goal = f"{r['goal']:.1f}" if r.get("goal") is not None else "-"
            need = f"{r['worker_cycles_for_goal']:.0f}" if r.get("worker_cycles_for_goal") is not None else "-"
            print(f"| {r['case']} | {r['baseline_cycles_per_packet']:.0f} | "
                  f"{r['driver_rx_cycles_per_packet'] + r['driver_tx_cycles_per_packet']:.0f} | "
                  f"{r['ratio_if_worker_free']:.2f} | {goal} | {need} | {r['cycles_per_packet']:.0f} |")
elif kind == "inspect":
    print("| case | ours Gbit/s | raw Hyperscan Gbit/s | ratio |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['ours_gbps']:.1f} | {r['baseline_gbps']:.1f} ({r['baseline']}) | **{r['ratio']:.2f}** |")
elif kind == "workers":
    print("| case | 1 worker Mpps | 2 workers Mpps | ratio |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['baseline_mpps']:.2f} | {r['ours_mpps']:.2f} | **{r['ratio']:.2f}** |")
elif kind == "swap":
    print("| rules | swaps | compile ms (p50) | swap p50 / p99 µs | lost | Mpps without / during | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['rules']} | {r['swaps']} | {r['compile_ms']:.1f} | {r['swap_p50_us']:.1f} / {r['swap_p99_us']:.1f} | "
              f"**{r['lost']}** | {r['mpps_without']:.2f} / {r['mpps_during']:.2f} | **{r['ratio']:.2f}** |")
elif kind == "flood":
    print("| flood share | established Mpps without / during | ratio | pass ratios | flood SYN Mpps | all packets Mpps | table max / capacity | evicted | established dropped |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['flood_share']:.2f} | {r['baseline_mpps']:.2f} / {r['ours_mpps']:.2f} | **{r['ratio']:.2f}** | "
              f"{', '.join(f'{x:.2f}' for x in r['pass_ratios'])} | {r['flood_mpps']:.2f} | {r['total_mpps']:.2f} | "
              f"{r['flow_table_max']} / {r['flow_capacity']} | {r['evicted_embryonic'] / 1e6:.1f} M | **{r['established_dropped']}** |")
