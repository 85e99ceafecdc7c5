"""Reads the JSON lines of a bench run (bench/run.sh) and prints the table of ratios: per case, the median
time of each side over all its samples, lumen time / torch time, and GFLOP/s as a fraction of the sgemm
limit (the best sgemm GFLOP/s measured). Run: /usr/bin/python3 bench/report.py results.jsonl ..."""
import json
import statistics
import sys


def read(paths):
    groups, order, cores = {}, [], {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                key = (r["bench"], r["case"], r["batch"], r["pass"])
                if key not in groups:
                    groups[key] = {"flop": None, "sides": {}}
                    order.append(key)
                if r.get("core"):
                    cores.setdefault(r["side"], set()).add(r["core"])
                g = groups[key]
                g["flop"] = g["flop"] or r.get("flop")
                g["sides"].setdefault(r["side"], []).extend(r["ms"])
    return groups, order, cores


def fmt(v, spec, width):
    return format(v, spec).rjust(width) if v is not None else "-".rjust(width)


def main():
    groups, order, cores = read(sys.argv[1:])
    limit = 0.0
    print("sgemm (the machine's limit):")
    for key in order:
        if key[0] == "sgemm":
            g = groups[key]
            ms = statistics.median(g["sides"]["openblas"])
            gf = g["flop"] / ms / 1e6
            limit = max(limit, gf)
            print(f"  {key[1]:<28} {ms:9.2f} ms {gf:8.1f} GFLOP/s")
    if not limit:
        print("  (not measured)")
    for side, names in sorted(cores.items()):
        print(f"{side} ran OpenBLAS kernels: {', '.join(sorted(names))}")
    print(f"\n{'bench':<8} {'case':<44} {'N':>3} {'pass':<11} {'lumen ms':>10} {'torch ms':>10} "
          f"{'lumen/torch':>11} {'lumen GF/s':>10} {'torch GF/s':>10} {'lumen %lim':>10} {'torch %lim':>10}")
    for key in order:
        if key[0] == "sgemm":
            continue
        g = groups[key]
        med = {s: statistics.median(v) for s, v in g["sides"].items()}
        lm, tm = med.get("lumen"), med.get("torch")
        gf = {s: g["flop"] / m / 1e6 if g["flop"] and m else None for s, m in med.items()}
        pct = {s: 100 * v / limit if v and limit else None for s, v in gf.items()}
        ratio = lm / tm if lm and tm else None
        print(f"{key[0]:<8} {key[1]:<44} {key[2]:>3} {key[3]:<11} {fmt(lm, '.2f', 10)} {fmt(tm, '.2f', 10)} "
              f"{fmt(ratio, '.2f', 11)} {fmt(gf.get('lumen'), '.1f', 10)} {fmt(gf.get('torch'), '.1f', 10)} "
              f"{fmt(pct.get('lumen'), '.0f', 10)} {fmt(pct.get('torch'), '.0f', 10)}")
    print("\nlumen/torch > 1: lumen slower. %lim: GFLOP/s as a percentage of the best sgemm above.")


if __name__ == "__main__":
    main()
