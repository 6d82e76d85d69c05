"""CPU check of the 8-bit-row weight path of the mixed-input wgmma kernel (w4_wgmma.cuh, kRows8):
a 128-row x 128-byte TMA box with the 128-byte swizzle, read back as mma A fragments.

The TMA SWIZZLE_128B layout: in each 1024-byte-aligned region, 16-byte chunk c of 128-byte line
r sits at chunk c ^ (r % 8); the box's lines are the weight rows (128 bytes of K each), and the
W region of a stage is 1024-byte aligned. The kernel's reads: warp tile t (16 rows), thread
(grp, tig); for k16 step `step` of the block, words (step ^ grp) * 4 + (tig >> 1) and + 2 of
rows 16 t + grp and 16 t + grp + 8, bytes 2 (tig & 1) and + 1 of each word. They must give the
m16n8k16 A fragment: a0 = (row g, k 2t, 2t+1), a1 = (row g+8, same k), a2 = (row g, k 2t+8, +9),
a3 = (row g+8, k 2t+8, +9), with k counted inside the step (16 steps... 8 per 128-K block).
Also checks that the reads of one instruction (one row half, all 32 lanes) hit 16 distinct
banks with broadcast pairs (no bank conflicts).

    python tools/emulate_rows8_wgmma.py
"""
import random


def swizzled_tile(w):
    """w: 128 rows x 128 bytes -> the smem bytes the TMA writes (SWIZZLE_128B)."""
    smem = bytearray(128 * 128)
    for r in range(128):
        for c in range(8):
            dst = r * 128 + ((c ^ (r % 8)) * 16)
            smem[dst:dst + 16] = bytes(w[r][c * 16:(c + 1) * 16])
    return smem


def word(smem, byte_off):
    return int.from_bytes(smem[byte_off:byte_off + 4], "little")


def main():
    rng = random.Random(0)
    w = [[rng.randrange(256) for _ in range(128)] for _ in range(128)]
    smem = swizzled_tile(w)
    checked = 0
    for tile in range(8):
        for lane in range(32):
            grp, tig = lane // 4, lane % 4
            row0 = tile * 16 + grp
            for step in range(8):
                widx = (step ^ grp) * 4 + (tig >> 1)
                b = 2 * (tig & 1)
                for h, row in ((0, row0), (1, row0 + 8)):
                    lo = word(smem, row * 128 + widx * 4)
                    hi = word(smem, row * 128 + (widx + 2) * 4)
                    got_lo = ((lo >> (8 * b)) & 0xFF, (lo >> (8 * (b + 1))) & 0xFF)
                    got_hi = ((hi >> (8 * b)) & 0xFF, (hi >> (8 * (b + 1))) & 0xFF)
                    k = 16 * step + 2 * tig
                    assert got_lo == (w[row][k], w[row][k + 1]), (tile, lane, step, h)
                    assert got_hi == (w[row][k + 8], w[row][k + 9]), (tile, lane, step, h)
                    checked += 4
        # bank check: one load instruction = all 32 lanes, one row half, one step, lo word
        for step in range(8):
            for h in (0, 1):
                addrs = [(tile * 16 + lane // 4 + 8 * h) * 128 + ((step ^ (lane // 4)) * 4 + ((lane % 4) >> 1)) * 4
                         for lane in range(32)]
                banks = {}
                for a in addrs:
                    banks.setdefault((a // 4) % 32, set()).add(a)
                assert all(len(v) == 1 for v in banks.values()), "bank conflict"
    print(f"rows8 A fragments from the swizzled box: {checked} bytes checked, no bank conflicts")


if __name__ == "__main__":
    main()
