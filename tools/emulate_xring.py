"""Replays the x ring of GEMV v8's kXRing variant (csrc/gemm/w4/w4_gemv_stream.cuh) with mbarrier
semantics, under random interleavings of the CTA's four warps and random TMA latencies, and checks:
every block reads the x slot holding that block's x (never a stale or a future one), no TMA box is
issued into a slot some warp may still read, and no schedule deadlocks.

The protocol as written in the kernel (S = kXRingStages slots, nb blocks, one K split per CTA):
  prologue   warp 0 lane 0: init x_full[k] (1 arrival + tx), x_empty[k] (128 arrivals);
             for k < min(S, nb): expect_tx(x_full[k]) and TMA box of block k into slot k;
             __syncthreads
  block b    if b > 0 and b - 1 + S < nb: every thread arrives on x_empty[(b - 1) % S];
               warp 0 lane 0 waits x_empty[(b - 1) % S] parity ((b - 1) / S) & 1, then
               expect_tx + TMA box of block b - 1 + S into slot (b - 1) % S
             every thread waits x_full[b % S] parity (b / S) & 1, reads slot b % S
mbarrier: a phase completes when its pending arrivals reach zero and its tx count is zero;
try_wait.parity(P) succeeds once the phase of parity P has completed (a fresh barrier passes
parity 1). Threads of a warp are modelled together (the arrival of a warp counts 32).

    python tools/emulate_xring.py
"""
import random

S = 4        # kXRingStages
WARPS = 4    # kStreamWarps


class MBarrier:
    def __init__(self, count):
        self.count, self.pending, self.tx, self.completed = count, count, 0, 0

    def arrive(self, n=1, tx=0):
        self.pending -= n
        self.tx += tx
        self._check()

    def complete_tx(self, tx):
        self.tx -= tx
        self._check()

    def _check(self):
        assert self.pending >= 0
        if self.pending == 0 and self.tx == 0:
            self.completed += 1
            self.pending = self.count

    def passed(self, parity):  # try_wait.parity: the phase of this parity has completed
        return self.completed % 2 != parity


def run(nb, seed):
    rng = random.Random(seed)
    arrived = set()               # (warp, block): the warp's arrival for block - 1 is done
    full = [MBarrier(1) for _ in range(S)]
    empty = [MBarrier(WARPS * 32) for _ in range(S)]
    slot = [None] * S             # block whose x the slot holds (None: being written or empty)
    readers = [set() for _ in range(S)]  # warps that may still read the slot's current block
    inflight = []                 # (ready time, slot, block)
    t = 0

    def issue(k, b):
        full[k].arrive(1, tx=256)
        assert not readers[k], f"TMA into slot {k} while warps {readers[k]} may read it"
        slot[k] = None
        inflight.append((t + rng.randint(1, 40), k, b))

    for k in range(min(S, nb)):
        issue(k, k)
    # per warp: block index and step within the block (0: release/refill, 1: wait x, 2: read)
    pos = [[0, 0] for _ in range(WARPS)]
    done = [False] * WARPS
    stall = 0
    while not all(done):
        t += 1
        for item in [i for i in inflight if i[0] <= t]:  # TMA boxes landing
            inflight.remove(item)
            _, k, b = item
            slot[k] = b
            full[k].complete_tx(256)
        w = rng.randrange(WARPS)
        if done[w]:
            continue
        b, step = pos[w]
        progressed = False
        if step == 0:
            if b > 0 and b - 1 + S < nb:
                kp = (b - 1) % S
                key = (w, b)
                if key not in arrived:
                    readers[kp].discard(w)
                    empty[kp].arrive(32)
                    arrived.add(key)
                if w == 0:
                    if not empty[kp].passed(((b - 1) // S) & 1):
                        stall += 1
                        continue  # lane 0 spins; the warp waits with it (the next MMA is warp-wide)
                    issue(kp, b - 1 + S)
            pos[w][1] = 1
            progressed = True
        elif step == 1:
            k = b % S
            if full[k].passed((b // S) & 1):
                pos[w][1] = 2
                progressed = True
        else:
            k = b % S
            assert slot[k] == b, f"warp {w} block {b} read slot {k} holding {slot[k]}"
            readers[k].add(w)
            pos[w] = [b + 1, 0]
            if b + 1 == nb:
                done[w] = True
            progressed = True
        stall = 0 if progressed else stall + 1
        assert stall < 100000, f"deadlock: positions {pos}"
    return t


if __name__ == "__main__":
    total = 0
    for nb in (1, 2, 3, 4, 5, 7, 8, 9, 16, 33, 64):
        for seed in range(200):
            total += 1
            run(nb, seed * 7919 + nb)
    print(f"x ring protocol: {total} random schedules (nb = 1..64, {WARPS} warps, {S} slots): every block read "
          "its own x, no box into a slot still read, no deadlock")
