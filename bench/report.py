#!/usr/bin/env python3
"""Turns the raw outputs of bench/run into one table.

Reads, from the results directory given as the only argument:
  <program>.<pass>.json   Google Benchmark JSON (one file per program per pass)
  sleepers.<pass>.txt     key=value lines from bench/sleepers
  machine.txt             key=value lines describing the run

Every benchmark reports `ops_per_iter`; ns per operation is the repetition's
time per iteration divided by it. For each benchmark the table shows the
median over all repetitions of all passes, with [min-max]. A ratio is
median(iou) / median(baseline); its [min-max] is over the per-pass ratios
(each pass's median iou over the same pass's median baseline), which shows
how stable the comparison is on a noisy machine.

The main table uses thread CPU time (Google Benchmark's cpu_time): every
benchmark here does all of its work on its own thread, the kernel side
included (NOPs complete inline in io_uring_enter; DEFER_TASKRUN runs task
work in the submitting thread), so CPU time is the cost of the operation
without the time the thread spent preempted by other load on the shared
machine. A second table repeats the comparisons in wall-clock time: on a
quiet machine the two agree; a large gap means the run was disturbed, or
that something slept where it should not have.

Prints Markdown tables (readable as plain text). Exit status 0 even when a
target is missed: the table says so.
"""
import glob
import json
import os
import re
import statistics
import sys

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
GIB_KIB = 1024 * 1024


def load_benchmarks(d, metric):
    """{name: [(pass, ns_per_op), ...]} over every repetition of every pass."""
    out = {}
    for path in sorted(glob.glob(os.path.join(d, "*.json"))):
        m = re.search(r"\.(\d+)\.json$", path)
        pss = int(m.group(1)) if m else 0
        with open(path) as f:
            data = json.load(f)
        for b in data.get("benchmarks", []):
            if b.get("run_type") != "iteration" or b.get("error_occurred"):
                continue
            ops = b.get("ops_per_iter")
            if not ops:
                continue
            # "/iterations:N" (a fixed count) and "/real_time" are not part of the name
            name = re.sub(r"(/iterations:\d+)?(/real_time)?$", "", b.get("run_name", b["name"]))
            ns = b[metric] * UNIT_NS[b.get("time_unit", "ns")] / ops
            out.setdefault(name, []).append((pss, ns))
    return out


def load_kv(path):
    kv = {}
    if not os.path.exists(path):
        return kv
    with open(path) as f:
        for line in f:
            k, sep, v = line.strip().partition("=")
            if sep:
                kv[k] = v
    return kv


def load_sleepers(d):
    runs = []
    for path in sorted(glob.glob(os.path.join(d, "sleepers.*.txt"))):
        kv = load_kv(path)
        if kv.get("status") == "ok":
            runs.append(kv)
    return runs


def med(xs):
    return statistics.median(xs) if xs else None


def values(samples):
    return [ns for _, ns in samples]


def fmt_ns(samples):
    if not samples:
        return "n/a"
    xs = values(samples)
    return f"{med(xs):.1f} ns [{min(xs):.1f}-{max(xs):.1f}]"


def ratio(iou, base):
    """(ratio of medians, [per-pass ratios])."""
    if not iou or not base:
        return None, []
    r = med(values(iou)) / med(values(base))
    per_pass = []
    for p in sorted({p for p, _ in iou} & {p for p, _ in base}):
        a = med([ns for q, ns in iou if q == p])
        b = med([ns for q, ns in base if q == p])
        per_pass.append(a / b)
    return r, per_pass


def fmt_ratio(r, per_pass):
    if r is None:
        return "n/a"
    if len(per_pass) > 1:
        return f"{r:.2f}x [{min(per_pass):.2f}-{max(per_pass):.2f}]"
    return f"{r:.2f}x"


def verdict(ok):
    if ok is None:
        return "n/a"
    return "PASS" if ok else "MISS"


NOP_BATCHES = (1, 32, 128)


def layout_mean(bm, name):
    """bench_ctx runs each side once per code layout of its partner loop
    (name/<layout>/...): one sample per pass, the mean over the layouts of
    each layout's median in that pass. A plain `name` (older runs) as is."""
    if name in bm:
        return bm[name]
    per = {}  # pass -> layout -> [ns]
    for key, samples in bm.items():
        m = re.match(re.escape(name) + r"/(\d+)(/|$)", key)
        if m:
            for pss, ns in samples:
                per.setdefault(pss, {}).setdefault(int(m.group(1)), []).append(ns)
    return [(pss, statistics.mean(med(v) for v in lay.values()))
            for pss, lay in sorted(per.items())] or None


def timed_rows(bm):
    """Rows (what, iou, baseline, ratio, target, result) for the timed comparisons."""
    rows = []
    iou = layout_mean(bm, "BM_ctx_swap_iou")
    base = layout_mean(bm, "BM_ctx_swap_boost_fcontext")
    r, pp = ratio(iou, base)
    rows.append(("context switch, ns/switch (vs boost fcontext; mean of 16 code layouts)",
                 fmt_ns(iou), fmt_ns(base), fmt_ratio(r, pp), "<= 1.10x",
                 verdict(None if r is None else r <= 1.10)))

    sj = bm.get("BM_spawn_join")
    m = med(values(sj)) if sj else None
    rows.append(("spawn+join, ns/pair (pooled stacks)", fmt_ns(sj), "-", "-", "<= 100 ns",
                 verdict(None if m is None else m <= 100.0)))

    for n in NOP_BATCHES:
        iou, base = bm.get(f"BM_nop_iou/{n}"), bm.get(f"BM_nop_raw/{n}")
        r, pp = ratio(iou, base)
        if n == 128:
            target, result = "<= 1.50x", verdict(None if r is None else r <= 1.50)
        else:
            target, result = "(info)", "-"
        rows.append((f"NOP, {n} task(s) vs raw batch of {n}, ns/NOP", fmt_ns(iou),
                     fmt_ns(base), fmt_ratio(r, pp), target, result))
    return rows


def load_counter(d, bench, key):
    """Every value of a user counter of one benchmark, over all passes."""
    vals = []
    for path in sorted(glob.glob(os.path.join(d, "*.json"))):
        with open(path) as f:
            data = json.load(f)
        for b in data.get("benchmarks", []):
            name = b.get("name", "").split("/")[0]  # e.g. BM_pending_1M/iterations:1
            if b.get("run_type") == "iteration" and name == bench and key in b:
                vals.append(float(b[key]))
    return vals


def toolkit_rows(bm, d):
    """The concurrency toolkit's targets: timers and channel hand-off."""
    rows = []
    tc = bm.get("BM_call_later_cancel/0")
    m = med(values(tc)) if tc else None
    rows.append(("timer insert+cancel (call_later + timer_cancel), ns/pair", fmt_ns(tc), "-", "-",
                 "<= 50 ns", verdict(None if m is None else m <= 50.0)))
    mb = load_counter(d, "BM_pending_1M", "heap_MB")
    rows.append(("1,000,000 pending timers, MB",
                 f"{med(mb):.1f} [{min(mb):.1f}-{max(mb):.1f}]" if mb else "n/a", "-", "-",
                 "<= 100 MB", verdict(med(mb) <= 100.0 if mb else None)))
    ch, park = bm.get("BM_chan_pingpong/1"), bm.get("BM_park_pingpong")
    extra = med(values(ch)) - med(values(park)) if ch and park else None
    rows.append(("channel send+recv between two tasks, ns (baseline: park/wake hand-over "
                 "= 2 switches)", fmt_ns(ch), fmt_ns(park),
                 "n/a" if extra is None else f"+{extra:.1f} ns", "<= +20 ns",
                 verdict(None if extra is None else extra <= 20.0)))
    return rows


def thread_rows(real):
    """The thread code's targets, in wall-clock time (the work is on several threads)."""
    rows = []
    rt = real.get("BM_pool_roundtrip")
    m = med(values(rt)) if rt else None
    rows.append(("pool round trip (iou_run_in_pool of an empty fn), wall ns", fmt_ns(rt), "-", "-",
                 "<= 10000 ns", verdict(None if m is None else m <= 10000.0)))
    idle = real.get("BM_pool_roundtrip_idle")
    if idle:  # the same call after 200 us of idleness: worker and loop both asleep
        rows.append(("pool round trip after 200 us idle (two wake-ups), wall ns", fmt_ns(idle),
                     "-", "-", "(info)", "-"))
    for n in (1, 2, 3, 4):
        cb = real.get(f"BM_threadsafe_callbacks/{n}")
        m = med(values(cb)) if cb else None
        rate = f"{1e3 / m:.2f} M/s" if m else "n/a"
        rows.append((f"thread-safe callbacks from {n} thread(s), wall ns/callback ({rate})",
                     fmt_ns(cb), "-", "-", ">= 1 M/s (<= 1000 ns)",
                     verdict(None if m is None else m <= 1000.0)))
    return rows


def sleeper_rows(sl):
    if not sl:
        return [("sleepers", "no successful run", "-", "-", "<= 1 GiB", "n/a")]
    rss = [int(k["rss_kib"]) for k in sl]
    per = [float(k["rss_per_task_bytes"]) for k in sl]
    maps = [int(k["maps_lines"]) for k in sl]
    limit = int(sl[0].get("max_map_count", "65530"))
    tasks = sl[0].get("tasks")
    return [
        (f"{tasks} sleepers, process RSS",
         f"{med(rss) / 1024:.0f} MiB [{min(rss) / 1024:.0f}-{max(rss) / 1024:.0f}]"
         f" = {med(per) / 1024:.2f} KiB/task",
         "-", "-", "<= 1 GiB", verdict(med(rss) <= GIB_KIB)),
        (f"{tasks} sleepers, lines in /proc/self/maps",
         f"{med(maps):.0f} [{min(maps)}-{max(maps)}]",
         f"max_map_count {limit}", f"{med(maps) / limit:.3f}",
         "far below (< 0.5)", verdict(med(maps) < limit / 2)),
    ]


def info_rows(bm, sl):
    info = []
    for name, what in (("BM_spawn_join_batch/8", "spawn 8 then join 8, ns/pair"),
                       ("BM_spawn_join_batch/64", "spawn 64 then join 64, ns/pair"),
                       ("BM_yield", "iou_yield() of a lone task, ns")):
        if name in bm:
            info.append((what, fmt_ns(bm[name])))
    for key, what in (("spawn_cpu_ns_per_task", "sleepers: spawn (fresh stacks), ns/task"),
                      ("settle_cpu_ns_per_task", "sleepers: first run until asleep, ns/task"),
                      ("teardown_cpu_ns_per_task", "sleepers: cancel+join, ns/task"),
                      ("rss_delta_per_task_bytes", "sleepers: RSS growth per task, bytes"),
                      ("hwm_kib", "sleepers: VmHWM, KiB")):
        xs = [float(k[key]) for k in sl if key in k]
        if xs:
            info.append((what, f"{med(xs):.1f} [{min(xs):.1f}-{max(xs):.1f}]"))
    return info


def print_table(headers, rows):
    widths = [max(len(str(r[i])) for r in list(rows) + [headers]) for i in range(len(headers))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "build-bench/bench-results"
    real = load_benchmarks(d, "real_time")
    cpu = load_benchmarks(d, "cpu_time")
    sl = load_sleepers(d)
    machine = load_kv(os.path.join(d, "machine.txt"))

    print("iou benchmarks: every comparison measured in the same run "
          "(thread CPU time per operation)")
    print()
    print_table(("comparison", "iou", "baseline", "ratio iou/baseline", "target", "result"),
                timed_rows(cpu) + sleeper_rows(sl) + toolkit_rows(cpu, d))

    th = thread_rows(real)
    if any(r[1] != "n/a" for r in th):
        print()
        print("Threads: pool and thread-safe calls (wall-clock time: the work spans threads)")
        print()
        print_table(("measure", "iou", "baseline", "ratio", "target", "result"), th)

    print()
    print("Check: the same comparisons in wall-clock time (includes preemption by other load)")
    print()
    print_table(("comparison", "iou", "baseline", "ratio iou/baseline", "target", "result"),
                timed_rows(real))

    info = info_rows(cpu, sl)
    if info:
        print()
        print_table(("information (no target; CPU time)",
                     "median [min-max]"), info)

    print()
    counts = [len(v) for v in cpu.values()]
    print("Medians over all repetitions of all passes "
          f"({min(counts) if counts else 0}-{max(counts) if counts else 0} samples per "
          "benchmark; the context switch: one per pass, the mean over its 16 code layouts); "
          "ratio ranges are over the per-pass ratios.")
    if machine:
        print(f"Machine: {machine.get('cpus', '?')} CPUs ({machine.get('cpu_model', '?')}), "
              f"kernel {machine.get('kernel', '?')}; passes={machine.get('passes', '?')} "
              f"reps={machine.get('reps', '?')} min_time={machine.get('min_time', '?')}s; "
              f"load average before/after: {machine.get('loadavg_before', '?')} / "
              f"{machine.get('loadavg_after', '?')}")


if __name__ == "__main__":
    main()
