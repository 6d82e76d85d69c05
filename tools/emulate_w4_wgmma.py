"""CPU check of the mixed-input wgmma kernel's 4-bit A fragments (csrc/gemm/w4/w4_wgmma.cuh),
written out lane by lane from a layout-v3 weight (mma.m16n8k16 A layout: thread (g, t) holds
rows g, g + 8 at k = 2t, 2t + 1, 2t + 8, 2t + 9 of each k16 step), for both ways the kernel
builds them:

- quad shuffles (128 tokens per CTA): each register from quad thread 2 s's / 2 s + 1's word,
  shifted by 4 t, must be the weight in natural K order (x is read as the TMA wrote it);
- x permuted (<= 64 tokens, permute_x_blocks): each register from the thread's own word (pairs
  2 s and 2 s + 1), and x's 128-byte-swizzled shared-memory rows transposed in place as the
  permuting warps do it; then every product the wgmma forms -- A at logical k times the B
  element it reads at logical k -- must be a product of the weight and x at one same natural k,
  each natural k exactly once.

Not a test of the CUDA code (tests/test_cuda_*.py are, on a GPU); tests/test_w4_wgmma_emulation.py
runs these checks in CI so a change of the layout or of the fragment arithmetic shows here.

    python tools/emulate_w4_wgmma.py
"""
import torch

from lowbit_ext import ops


def weight(N, K, seed=0):
    """Random codes (N, K) in natural order and the layout-v3 words (flat, as unsigned ints)."""
    gen = torch.Generator().manual_seed(seed)
    plain = torch.randint(0, 256, (N, K // 2), generator=gen, dtype=torch.uint8)
    codes = torch.stack([plain & 0xF, plain >> 4], -1).reshape(N, K).long()
    return codes, ops.prepack_w4(plain).view(-1).long() & 0xFFFFFFFF


def lane_words(w, tile, kb, words):
    """Each lane's two uint4 of a tile's 1 KB chunk of block kb: row g's words at 16 g + 4 t,
    row g + 8's at 128 + 16 g + 4 t (what the consumer's two ld.shared.v4 load)."""
    base = tile * 16 * words + kb * 256
    return [[[int(w[base + h * 128 + 16 * (lane // 4) + 4 * (lane % 4) + j]) for j in range(4)] for h in range(2)]
            for lane in range(32)]


def pair(r):
    """codes_to_pair's two codes: bits 0-3 (lower k) and 16-19."""
    return r & 0xF, (r >> 16) & 0xF


def check_shuffles(N=32, K=384):
    codes, w = weight(N, K)
    words, checked = K // 8, 0
    for tile in range(N // 16):
        for kb in range(K // 128):
            wr = lane_words(w, tile, kb, words)
            for j in range(4):
                for s in range(2):
                    k0 = kb * 128 + 32 * j + 16 * s  # natural K of this k16 step
                    for lane in range(32):
                        g, t, quad = lane // 4, lane % 4, lane & ~3
                        lo = [wr[quad | (2 * s)][h][j] for h in range(2)]  # rows g, g + 8
                        hi = [wr[quad | (2 * s + 1)][h][j] for h in range(2)]
                        regs = [lo[0] >> (4 * t), lo[1] >> (4 * t), hi[0] >> (4 * t), hi[1] >> (4 * t)]
                        want = [(g, 2 * t), (g + 8, 2 * t), (g, 2 * t + 8), (g + 8, 2 * t + 8)]
                        for r, (row, kk) in zip(regs, want):
                            n = tile * 16 + row
                            exp = (int(codes[n, k0 + kk]), int(codes[n, k0 + kk + 1]))
                            assert pair(r) == exp, (tile, kb, j, s, lane, pair(r), exp)
                            checked += 1
    return checked


def permuted_x_block(kb, tokens):
    """The shared-memory image of one stage's x after permute_x_blocks, as natural K indices:
    two TMA boxes of `tokens` rows x 64 elements (128 bytes, 16-byte unit c of row r stored at
    unit c ^ (r % 8)); smem[box][row][byte-unit][element] = the natural k of x it holds."""
    smem = [[[[kb * 128 + 64 * box + 8 * (u ^ (row % 8)) + e for e in range(8)] for u in range(8)]
             for row in range(tokens)] for box in range(2)]
    for c in range(4 * tokens):  # one permuting thread per 64-byte chunk, as in the kernel
        box, row, half = c // (2 * tokens), (c // 2) % tokens, c % 2
        units = [(4 * half + i) ^ (row % 8) for i in range(4)]
        u = [smem[box][row][p] for p in units]  # four 16-byte loads, 4 words (pairs) each
        v = [[e for t in range(4) for e in u[t][2 * a:2 * a + 2]] for a in range(4)]  # word t of v[a] = word a of u[t]
        for i, p in enumerate(units):
            smem[box][row][p] = v[i]
    return smem


def b_element(smem, row, kk):
    """The natural k wgmma reads for logical element kk (0..127 of the block) of x row `row`:
    the descriptor walks the swizzled rows in logical order."""
    box, e = kk // 64, kk % 64
    return smem[box][row][(e // 8) ^ (row % 8)][e % 8]


def check_permuted(N=32, K=384, tokens=16):
    codes, w = weight(N, K, seed=1)
    words, checked = K // 8, 0
    for tile in range(N // 16):
        for kb in range(K // 128):
            wr = lane_words(w, tile, kb, words)
            smem = permuted_x_block(kb, tokens)
            for row in range(16):  # every weight row of the tile: its products over the block
                seen = []
                for j in range(4):
                    for s in range(2):
                        for lane in range(32):
                            g, t = lane // 4, lane % 4
                            if row % 8 != g:
                                continue
                            h = row // 8
                            own = wr[lane][h][j]
                            for hi, r in ((0, own >> (8 * s)), (1, own >> (8 * s + 4))):
                                lk = 32 * j + 16 * s + 8 * hi + 2 * t  # logical k of the register's low half
                                for e, code in enumerate(pair(r)):
                                    nk = b_element(smem, 0, lk + e)  # (every token row holds the same k)
                                    assert all(b_element(smem, m, lk + e) == nk for m in range(tokens))
                                    n = tile * 16 + row
                                    assert code == int(codes[n, nk]), (tile, kb, j, s, lane, hi, e)
                                    seen.append(nk)
                                    checked += 1
                assert sorted(seen) == list(range(kb * 128, kb * 128 + 128)), (tile, kb, row)
    return checked


def main():
    print(f"quad shuffles: {check_shuffles()} registers match natural K order")
    print(f"x permuted: {check_permuted()} products pair the weight and x at one natural k, each k once")


if __name__ == "__main__":
    main()
