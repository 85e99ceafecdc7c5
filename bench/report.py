"""Reads the JSON lines of a bench run (bench/run.sh) and prints the table: per case and thread count, the median
time of each side over all its samples, lumen's ratio to PyTorch (with the range of the per-round ratios: each
round is one process per side; and the same ratios in process CPU time, which at one thread hold on a loaded
machine), to onnxruntime and to an older lumen ("before", when run.sh had LUMEN_BEFORE),
GFLOP/s as a fraction of the sgemm limit (the best sgemm GFLOP/s measured), and the peak resident memory of each
side's workload (MiB, the median over rounds). Run: /usr/bin/python3 bench/report.py [--markdown] results.jsonl ..."""
import json
import statistics
import sys

SIDES = ("lumen", "torch", "ort", "before")


def read(paths):
    groups, order, cores = {}, [], {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                key = (r["bench"], r["case"], r["batch"], r["pass"], r.get("threads", 2))
                if key not in groups:
                    groups[key] = {"flop": None, "ms": {}, "rounds": {}, "rss": {}, "cpu": {}}
                    order.append(key)
                if r.get("core"):
                    cores.setdefault(r["side"], set()).add(r["core"])
                g = groups[key]
                g["flop"] = g["flop"] or r.get("flop")
                g["ms"].setdefault(r["side"], []).extend(r["ms"])
                g["rounds"].setdefault(r["side"], []).append(statistics.median(r["ms"]))
                if r.get("cpu_ms"):
                    g["cpu"].setdefault(r["side"], []).extend(r["cpu_ms"])
                if r.get("rss_mib") is not None:
                    g["rss"].setdefault(r["side"], []).append(r["rss_mib"])
    return groups, order, cores


def fmt(v, spec, width=0):
    s = format(v, spec) if v is not None else "-"
    return s.rjust(width)


def ratio(med, a, b):
    return med[a] / med[b] if med.get(a) and med.get(b) else None


def spread(g, a, b):
    """min-max of the per-round ratios a/b (rounds paired in order)."""
    ra, rb = g["rounds"].get(a, []), g["rounds"].get(b, [])
    rs = [x / y for x, y in zip(ra, rb) if y]
    if len(rs) < 2:
        return ""
    return f"{min(rs):.2f}-{max(rs):.2f}"


def main():
    argv = sys.argv[1:]
    markdown = "--markdown" in argv
    groups, order, cores = read([a for a in argv if a != "--markdown"])
    limit = 0.0
    lines = []
    for key in order:
        if key[0] == "sgemm":
            g = groups[key]
            ms = statistics.median(g["ms"]["openblas"])
            gf = g["flop"] / ms / 1e6
            limit = max(limit, gf)
            lines.append(f"  {key[1]:<28} {ms:9.2f} ms {gf:8.1f} GFLOP/s")
    print("sgemm (the machine's limit):")
    print("\n".join(lines) if lines else "  (not measured)")
    for side, names in sorted(cores.items()):
        print(f"{side} ran OpenBLAS kernels: {', '.join(sorted(names))}")
    rows = []
    for key in order:
        if key[0] == "sgemm":
            continue
        g = groups[key]
        med = {s: statistics.median(v) for s, v in g["ms"].items()}
        gf = {s: g["flop"] / m / 1e6 if g["flop"] and m else None for s, m in med.items()}
        pct = {s: 100 * v / limit if v and limit else None for s, v in gf.items()}
        rss = {s: statistics.median(v) for s, v in g["rss"].items()}
        g["cpu_med"] = {s: statistics.median(v) for s, v in g["cpu"].items()}
        rows.append((key, med, pct, rss, g))
    has = {s: any(s in r[1] for r in rows) for s in SIDES}
    if markdown:
        head = ["work", "threads", "lumen / torch (range)"]
        head += ["lumen / ort"] if has["ort"] else []
        head += ["lumen / before"] if has["before"] else []
        head += ["lumen % of sgemm", "torch % of sgemm", "peak RSS MiB lumen / torch" + (" / ort" if has["ort"] else "")]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for key, med, pct, rss, g in rows:
            work = f"{key[1]} {key[3]}, batch {key[2]}" if key[0] != "explain" else key[1]
            cells = [work, str(key[4]), f"{fmt(ratio(med, 'lumen', 'torch'), '.2f')} ({spread(g, 'lumen', 'torch')})"]
            cells += [fmt(ratio(med, "lumen", "ort"), ".2f")] if has["ort"] else []
            cells += [fmt(ratio(med, "lumen", "before"), ".2f")] if has["before"] else []
            cells += [fmt(pct.get("lumen"), ".0f"), fmt(pct.get("torch"), ".0f"),
                      " / ".join(fmt(rss.get(s), ".0f") for s in ("lumen", "torch", "ort")[:3 if has["ort"] else 2])]
            print("| " + " | ".join(cells) + " |")
        return
    print(f"\n{'bench':<8} {'case':<34} {'N':>3} {'pass':<11} {'thr':>3} " + " ".join(f"{s + ' ms':>10}" for s in SIDES if has[s])
          + f" {'l/torch':>8} {'range':>10} {'cpu l/t':>7} {'l/ort':>6} {'l/before':>8} {'cpu l/b':>7} {'l %lim':>6}"
          f" {'t %lim':>6}  rss MiB l/t/o")
    for key, med, pct, rss, g in rows:
        print(f"{key[0]:<8} {key[1]:<34} {key[2]:>3} {key[3]:<11} {key[4]:>3} "
              + " ".join(fmt(med.get(s), ".2f", 10) for s in SIDES if has[s])
              + f" {fmt(ratio(med, 'lumen', 'torch'), '.2f', 8)} {spread(g, 'lumen', 'torch'):>10}"
              f" {fmt(ratio(g['cpu_med'], 'lumen', 'torch'), '.2f', 7)}"
              f" {fmt(ratio(med, 'lumen', 'ort'), '.2f', 6)} {fmt(ratio(med, 'lumen', 'before'), '.2f', 8)}"
              f" {fmt(ratio(g['cpu_med'], 'lumen', 'before'), '.2f', 7)}"
              f" {fmt(pct.get('lumen'), '.0f', 6)} {fmt(pct.get('torch'), '.0f', 6)}  "
              + "/".join(fmt(rss.get(s), ".0f") for s in ("lumen", "torch", "ort")))
    scaling = {}
    for key, med, pct, rss, g in rows:
        scaling.setdefault(key[:4], {})[key[4]] = med.get("lumen")
    pairs = [(k, v[1], v[2]) for k, v in scaling.items() if v.get(1) and v.get(2)]
    if pairs:
        slower = [k for k, one, two in pairs if two >= one]
        print(f"\nlumen, 2 threads / 1 thread: {min(t / o for _, o, t in pairs):.2f}-{max(t / o for _, o, t in pairs):.2f}"
              f" over {len(pairs)} workloads; not faster on 2: {', '.join(f'{k[1]} {k[3]} N={k[2]}' for k in slower) or 'none'}")
    print("\nlumen/torch > 1: lumen slower; range: the per-round ratios; cpu l/t, cpu l/b: the same ratios in"
          " process CPU time (at 1 thread the load-proof figure). %lim: GFLOP/s as a percentage of the best"
          " sgemm above. rss: peak resident MiB of the workload's process (model bench: one network per process).")


if __name__ == "__main__":
    main()
