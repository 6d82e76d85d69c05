"""Stall samples of an ncu source page (ncu -i REP --page source --csv --print-source sass): the share
of each stall reason and of each opcode (with its executed count), and the instructions holding the
most samples. Usage: python3 tools/ncu_stalls.py gemv_v8_source.csv [...] (session 22: v8 at M = 1)."""
import collections
import csv
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"


def report(path, top=8):
    rows = list(csv.reader(open(path)))
    header, data = rows[1], [r for r in rows[2:] if len(r) >= len(rows[1])]
    col = {h: i for i, h in enumerate(header)}
    reasons = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    by_reason, by_op, executed = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for r in data:
        samples = int(r[col[SAMPLES]] or 0)
        total += samples
        words = r[col["Source"]].split()
        op = (words[1] if words and words[0].startswith("@") else words[0] if words else "?").split(".")[0]
        by_op[op] += samples
        executed[op] += int(r[col["Instructions Executed"]] or 0)
        for h in reasons:
            by_reason[h] += int(r[col[h]] or 0)
    print(f"{path}: {total} samples")
    for h, v in by_reason.most_common(10):
        print(f"  {h:28s} {100 * v / total:5.1f}%")
    print("  by opcode (share of samples, instructions executed):")
    for op, v in by_op.most_common(12):
        print(f"    {op:8s} {100 * v / total:5.1f}%  {executed[op]}")
    print("  the instructions with the most samples:")
    for r in sorted(data, key=lambda r: -int(r[col[SAMPLES]] or 0))[:top]:
        print(f"    {100 * int(r[col[SAMPLES]] or 0) / total:5.1f}%  {r[col['Source']].strip()[:70]}")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        report(p)
