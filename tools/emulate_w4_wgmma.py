"""CPU check of the large-M a16w4 kernel's A fragments (csrc/gemm/w4/w4_wgmma.cuh): for
every 16-row tile x 128-element block of a layout-v3 weight, the kernel's quad shuffles,
shifts and masks, written out lane by lane, must give wgmma's A operand in natural K order
(mma.m16n8k16 A layout: thread (g, t) holds rows g, g + 8 at k = 2t, 2t + 1, 2t + 8, 2t + 9
of each k16 step). Not a test of the CUDA code (tests/test_cuda_variants.py is, on a GPU).

    python tools/emulate_w4_wgmma.py
"""
import torch

from lowbit_ext import ops


def main():
    gen = torch.Generator().manual_seed(0)
    N, K = 32, 384
    plain = torch.randint(0, 256, (N, K // 2), generator=gen, dtype=torch.uint8)
    codes = torch.stack([plain & 0xF, plain >> 4], -1).reshape(N, K).long()  # natural order
    w = ops.prepack_w4(plain).view(-1).long() & 0xFFFFFFFF
    words = K // 8
    checked = 0
    for tile in range(N // 16):
        for kb in range(K // 128):
            chunk = w[tile * 16 * words + kb * 256: tile * 16 * words + kb * 256 + 256]  # the 1 KB chunk
            # each lane's two uint4: row grp's words at 16 grp + 4 tig, row grp + 8's at 128 + ...
            wr = [[[int(chunk[h * 128 + 16 * (lane // 4) + 4 * (lane % 4) + j]) for j in range(4)] for h in range(2)]
                  for lane in range(32)]
            for j in range(4):
                for s in range(2):
                    k0 = kb * 128 + 32 * j + 16 * s  # natural K of this k16 step
                    for lane in range(32):
                        g, t, quad = lane // 4, lane % 4, lane & ~3
                        lo = [wr[quad | (2 * s)][h][j] for h in range(2)]       # rows g, g + 8
                        hi = [wr[quad | (2 * s + 1)][h][j] for h in range(2)]
                        regs = [lo[0] >> (4 * t), lo[1] >> (4 * t), hi[0] >> (4 * t), hi[1] >> (4 * t)]
                        want = [(g, 2 * t), (g + 8, 2 * t), (g, 2 * t + 8), (g + 8, 2 * t + 8)]
                        for r, (row, kk) in zip(regs, want):
                            got = (r & 0xF, (r >> 16) & 0xF)  # codes_to_pair's two halves
                            n = tile * 16 + row
                            exp = (int(codes[n, k0 + kk]), int(codes[n, k0 + kk + 1]))
                            assert got == exp, (tile, kb, j, s, lane, got, exp)
                            checked += 1
    print(f"A fragments from layout v3 by quad shuffles: {checked} registers match natural K order")


if __name__ == "__main__":
    main()
