# Stall samples of an ncu source page (--page source --csv --print-source sass): the share of each
# stall reason and of each opcode. Usage: python3 tools/ncu_stalls.py gemv_v8_source.csv ...
import csv,sys,collections,re
for f in sys.argv[1:]:
    rows=list(csv.reader(open(f)))
    hdr=rows[1]; data=rows[2:]
    idx={h:i for i,h in enumerate(hdr)}
    tot=collections.Counter(); byop=collections.Counter(); inst=collections.Counter()
    allS=0
    for r in data:
        if len(r)<len(hdr): continue
        s=int(r[idx["Warp Stall Sampling (All Samples)"]] or 0); allS+=s
        op=r[idx["Source"]].split()[0] if r[idx["Source"]].split() else '?'
        if op.startswith('@'): op=r[idx["Source"]].split()[1]
        op=op.split('.')[0]
        byop[op]+=s; inst[op]+=int(r[idx["Instructions Executed"]] or 0)
        for h in hdr:
            if h.startswith('stall_') and 'Not Issued' not in h:
                tot[h]+=int(r[idx[h]] or 0)
    print(f, "samples", allS)
    for k,v in tot.most_common(10): print(f"  {k:28s} {100*v/allS:5.1f}%")
    print("  by opcode (samples%, executed):")
    for k,v in byop.most_common(12): print(f"    {k:8s} {100*v/allS:5.1f}%  {inst[k]}")
