#!/usr/bin/env python3
"""The report of bench/fio-compare: tables, ratios, targets.

Usage: storage_report.py RESULTS_DIR [RESULTS_MD]

Reads RESULTS_DIR/runs.jsonl (one JSON object per run: kind read|pair|copy,
round, cell, tool, result; "pair" runs are the direct QD 32 target measured
in strict alternation, iou then fio, whose paired ratios decide it) and RESULTS_DIR/machine.txt. Prints plain-text
tables: medians over the rounds with [min-max], and ratios iou / baseline
computed per round (paired), median [min-max]. With RESULTS_MD, the text
between the markers <!-- storage:begin --> and <!-- storage:end --> of that
file is replaced by the tables and the command (the section "Storage" is
appended, with the markers, if the file has none). Exit status 0 even when a
target is missed: the table says so.
"""
import json
import os
import statistics
import sys

BEGIN, END = "<!-- storage:begin -->", "<!-- storage:end -->"
HEADING = "## Storage: iou-randread and iou-cp against fio and cp"


def load(d):
    rows = [json.loads(l) for l in open(os.path.join(d, "runs.jsonl")) if l.strip()]
    kv = {}
    for line in open(os.path.join(d, "machine.txt")):
        k, sep, v = line.rstrip("\n").partition("=")
        if sep:
            kv[k] = v
    return rows, kv


def spread(v, fmt):
    if not v:
        return "-"
    return (fmt + " [" + fmt + "-" + fmt + "]") % (statistics.median(v), min(v), max(v))


ORDER = ["iou", "iou-fixed", "fio-uring", "fio-uring-fixed", "fio-psync",
         "cp", "iou-cp", "iou-cp-direct"]


class Runs:
    """The runs of one kind. A tool that ran more than once in a round and
    cell (the large-file copies: twice, A B B A) counts with its fastest run
    there: a copy's time is its own cost plus a surcharge from the VM (memory
    the host hands back, preemption by other load) that only adds."""

    def __init__(self, rows, kind):
        self.all = [r for r in rows if r["kind"] == kind]
        best = {}
        for r in self.all:
            k = (r["round"], r["cell"], r["tool"])
            if k not in best or faster(r, best[k]):
                best[k] = r
        self.rows = [r for r in self.all if best[(r["round"], r["cell"], r["tool"])] is r]
        self.cells = []
        self.tools = []
        for r in self.rows:
            if r["cell"] not in self.cells:
                self.cells.append(r["cell"])
            if r["tool"] not in self.tools:
                self.tools.append(r["tool"])
        self.tools.sort(key=lambda t: ORDER.index(t) if t in ORDER else 99)

    def vals(self, cell, tool, key):
        return [r["result"][key] for r in self.rows if r["cell"] == cell and r["tool"] == tool]

    def by_round(self, cell, tool, key):
        return {r["round"]: r["result"][key] for r in self.rows
                if r["cell"] == cell and r["tool"] == tool}

    def ratios(self, cell, a, b, key, invert=False):
        """a / b per round (b / a with invert: a speed-up from times)."""
        x, y = self.by_round(cell, a, key), self.by_round(cell, b, key)
        out = []
        for k in x:
            if k in y and x[k] > 0 and y[k] > 0:
                out.append(y[k] / x[k] if invert else x[k] / y[k])
        return out


def faster(a, b):
    ra, rb = a["result"], b["result"]
    if "wall_s" in ra:
        return ra["wall_s"] < rb["wall_s"]
    return ra.get("iops", 0) > rb.get("iops", 0)


def quartiles(v):
    q = statistics.quantiles(v, n=4) if len(v) >= 2 else [v[0]] * 3
    return q[0], q[2]


def pair_table(P, out, verdicts):
    a, b = "iou-fixed", "fio-uring-fixed"
    rat = P.ratios("direct-qd32", a, b, "iops")
    if not rat:
        return False
    out.append("Direct QD 32, the target cell again in strict alternation (iou-fixed, fio-fixed,"
               " iou-fixed, ...): %d pairs" % len(rat))
    for t in (a, b):
        out.append("  %-16s IOPS %s; CPU us per read %s" % (
            t, spread(P.vals("direct-qd32", t, "iops"), "%.0f"),
            spread(P.vals("direct-qd32", t, "cpu_us_per_io"), "%.2f")))
    lo, hi = quartiles(rat)
    ok = statistics.median(rat) >= 0.95
    verdicts.append(ok)
    out.append("  iou-fixed / fio-fixed per pair: median %.3f, quartiles %.3f-%.3f, range %.3f-%.3f,"
               " above 1 in %d of %d; target >= 0.95x: %s" % (
                   statistics.median(rat), lo, hi, min(rat), max(rat),
                   sum(r > 1 for r in rat), len(rat), "met" if ok else "MISSED"))
    return True


def read_tables(R, out, verdicts, paired=False):
    w = 26
    out.append("Random 4 KiB reads: IOPS, median [min-max] over the rounds (iou = iou-randread;"
               " -fixed: registered buffers and file; fio-psync at QD 32 = 32 threads)")
    out.append("%-12s" % "cell" + "".join("%-*s" % (w, t) for t in R.tools))
    for c in R.cells:
        out.append("%-12s" % c + "".join("%-*s" % (w, spread(R.vals(c, t, "iops"), "%.0f"))
                                        for t in R.tools))
    out.append("")
    out.append("iou / baseline IOPS, per round (paired): median [min-max]")
    pairs = [("iou", "fio-uring"), ("iou-fixed", "fio-uring-fixed"), ("iou", "fio-psync"),
             ("iou-fixed", "fio-psync")]
    out.append("%-12s" % "cell" + "".join("%-*s" % (w, "%s/%s" % (a, b.replace("fio-", "")))
                                        for a, b in pairs) + "target")
    for c in R.cells:
        line = "%-12s" % c
        for a, b in pairs:
            line += "%-*s" % (w, spread(R.ratios(c, a, b, "iops"), "%.3f"))
        target = ""
        if c == "direct-qd32" and paired:
            target = "fixed >= 0.95x fio fixed: see the pairs below"
        elif c == "direct-qd32":
            rat = R.ratios(c, "iou-fixed", "fio-uring-fixed", "iops")
            if rat:
                ok = statistics.median(rat) >= 0.95
                verdicts.append(ok)
                target = "fixed >= 0.95x fio fixed: %s" % ("met" if ok else "MISSED")
        if c == "cached-qd1":
            rat = R.ratios(c, "iou", "fio-psync", "iops")
            rat2 = R.ratios(c, "iou", "fio-uring", "iops")
            if rat:
                ok = statistics.median(rat) >= 0.9
                ok2 = bool(rat2) and statistics.median(rat2) > 1.0
                verdicts += [ok, ok2]
                target = ">= 0.9x psync: %s; > fio io_uring: %s" % (
                    "met" if ok else "MISSED", "met" if ok2 else "MISSED")
        out.append(line + target)
    out.append("")
    out.append("Latency p50 / p99 / p99.9 in microseconds (medians over the rounds)")
    out.append("%-12s" % "cell" + "".join("%-*s" % (w, t) for t in R.tools))
    for c in R.cells:
        line = "%-12s" % c
        for t in R.tools:
            p = [R.vals(c, t, k) for k in ("p50_us", "p99_us", "p999_us")]
            line += "%-*s" % (w, "/".join("%.1f" % statistics.median(v) if v else "-" for v in p))
        out.append(line)
    out.append("")
    out.append("CPU microseconds per read (user + system, all threads), medians")
    out.append("%-12s" % "cell" + "".join("%-*s" % (w, t) for t in R.tools))
    for c in R.cells:
        out.append("%-12s" % c + "".join(
            "%-*s" % (w, "%.2f" % statistics.median(R.vals(c, t, "cpu_us_per_io"))
                      if R.vals(c, t, "cpu_us_per_io") else "-") for t in R.tools))


def copy_tables(C, out, verdicts, kv):
    w = 26
    out.append("Copies: seconds (wall), median [min-max] over the rounds; MB/s of the median"
               " (large-file cells: each tool twice per round, A B B A, the faster copy counts)")
    out.append("%-12s" % "cell" + "".join("%-*s" % (w, t) for t in C.tools))
    for c in C.cells:
        line = "%-12s" % c
        for t in C.tools:
            v = C.vals(c, t, "wall_s")
            if v:
                mbs = statistics.median(C.vals(c, t, "mb_per_s"))
                line += "%-*s" % (w, spread(v, "%.2f") + " %.0f" % mbs)
            else:
                line += "%-*s" % (w, "-")
        out.append(line)
    out.append("")
    out.append("Speed-up over cp (cp time / iou-cp time, per round): median [min-max];"
               " faster in how many rounds; the same in CPU time")
    out.append("%-12s%-*s%-*s%-*s%s" % ("cell", w, "iou-cp", w, "iou-cp --direct", w,
                                      "iou-cp, CPU time", "target"))
    for c in C.cells:
        rat = C.ratios(c, "iou-cp", "cp", "wall_s", invert=True)
        rd = C.ratios(c, "iou-cp-direct", "cp", "wall_s", invert=True)
        rc = C.ratios(c, "iou-cp", "cp", "cpu_s", invert=True)
        need = 1.5 if c.startswith("tree") else 1.0
        target = ""
        if rat:
            ok = statistics.median(rat) >= need
            verdicts.append(ok)
            target = ">= %.1fx cp: %s" % (need, "met" if ok else "MISSED")
        won = "%s %d/%d" % (spread(rat, "%.2f"), sum(r > 1 for r in rat), len(rat)) if rat else "-"
        out.append("%-12s%-*s%-*s%-*s%s" % (c, w, won, w, spread(rd, "%.2f"), w,
                                          spread(rc, "%.2f"), target))
    out.append("")
    out.append("CPU seconds (user + system of the tool and its threads), median [min-max]")
    out.append("%-12s" % "cell" + "".join("%-*s" % (w, t) for t in C.tools))
    for c in C.cells:
        out.append("%-12s" % c + "".join(
            "%-*s" % (w, spread(C.vals(c, t, "cpu_s"), "%.2f")) for t in C.tools))
    vm_note(C, out)


def vm_note(C, out):
    """How often the VM's page reporter handed memory back to the host while
    a large-file copy ran (all copies, not only the counted ones)."""
    runs = [r for r in C.all if r["cell"].startswith("large")
            and "vm_returned_mib" in r["result"] and r["tool"] != "iou-cp-direct"]
    if not runs:
        return
    hit = [r["result"]["vm_returned_mib"] for r in runs if r["result"]["vm_returned_mib"] > 0]
    out.append("")
    out.append("VM page reporting: memory handed back to the host during %d of %d buffered"
               " large-file copies%s" % (len(hit), len(runs),
                                         " (median %.0f MiB while one ran)" % statistics.median(hit)
                                         if hit else ""))


def report(d):
    rows, kv = load(d)
    out, verdicts = [], []
    out.append("Storage: %s rounds of random reads (%s s measured after %s s warm-up), %s"
               " alternating pairs for the direct QD 32 target, %s rounds of copies; data file"
               " %s MiB; tree of %s files (%s MB)" % (
                   kv.get("rounds"), kv.get("runtime"), kv.get("ramp"), kv.get("pairs", "0"),
                   kv.get("copy_rounds", kv.get("rounds")), kv.get("size_mb"), kv.get("files"),
                   kv.get("tree_mb")))
    out.append("machine: %s CPUs (%s), kernel %s, %s; %s; %s; load %s -> %s" % (
        kv.get("cpus"), kv.get("cpu_model"), kv.get("kernel"), kv.get("fs"), kv.get("fio"),
        kv.get("cp"), kv.get("loadavg_before"), kv.get("loadavg_after")))
    if kv.get("note"):
        out.append("NOTE: " + kv["note"])
    out.append("")
    R, P = Runs(rows, "read"), Runs(rows, "pair")
    paired = bool(P.ratios("direct-qd32", "iou-fixed", "fio-uring-fixed", "iops"))
    if R.rows:
        read_tables(R, out, verdicts, paired)
        out.append("")
    if paired:
        pair_table(P, out, verdicts)
        out.append("")
    C = Runs(rows, "copy")
    if C.rows:
        copy_tables(C, out, verdicts, kv)
        out.append("")
    out.append("targets: %d of %d met" % (sum(verdicts), len(verdicts)))
    return "\n".join(out), kv


def update_md(path, table, kv):
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    block = "\n".join([
        BEGIN,
        "Generated by `bash bench/fio-compare` (also the last step of `bash bench/run`) on %s,"
        " commit %s:" % (kv.get("date", "?"), kv.get("commit", "?")),
        "",
        "```text",
        table,
        "```",
        END,
    ])
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + HEADING + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    d = sys.argv[1]
    table, kv = report(d)
    kv.setdefault("date", "")
    print(table)
    if len(sys.argv) > 2 and sys.argv[2]:
        update_md(sys.argv[2], table, kv)


if __name__ == "__main__":
    main()
