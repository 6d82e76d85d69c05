"""Replays the index arithmetic of the streaming 8-bit-row GEMV (csrc/gemm/int8/rows8_gemv_stream.cuh)
in numpy, on the CPU, before it ever runs on a GPU: the warp -> (split, tile) map, the 32 lane
bulk copies of a block into a ring slot (odd rows' halves swapped), each lane's 16-byte reads,
the x and E8M0 offsets, the mma.sync m16n8k16 fragment layout and the split reduction. Checks
that every weight byte a lane multiplies is the one the row-major (N, K) tensor holds at that k,
paired with x at the same k, and that the result equals W x. Also checks that the reads of a
quad phase (8 lanes: rows g, g + 1) touch 32 distinct banks.

    python tools/emulate_rows8_stream.py
"""
import numpy as np

BLOCK = 128  # kR8StreamBlock
WARPS = 4    # kR8StreamWarps


def plan(N, K, sms=132, per_sm=16):
    tiles, blocks = N // 16, K // BLOCK
    splits = min(max((per_sm * sms + tiles // 2) // tiles, 1), blocks)
    slice_ = -(-blocks // splits)
    return slice_ * BLOCK, -(-blocks // slice_)


def emulate(M, N, K, mx=False, seed=0, per_sm=16):
    rng = np.random.default_rng(seed)
    W = rng.integers(-127, 128, size=(N, K)).astype(np.int64)
    X = rng.integers(-8, 9, size=(M, K)).astype(np.int64)
    S = rng.integers(0, 4, size=(N, K // 32)).astype(np.int64) if mx else None  # scale exponents
    k_slice, splits = plan(N, K, per_sm=per_sm)
    tiles = N // 16
    partial = np.zeros((splits, M, N), dtype=np.int64)
    Wflat = W.astype(np.int8).tobytes()
    for wid in range(tiles * splits):
        split, tile = wid // tiles, wid % tiles
        kb0 = split * (k_slice // BLOCK)
        nb = min(K // BLOCK - kb0, k_slice // BLOCK)
        for b in range(nb):
            slot = bytearray(16 * BLOCK)
            for lane in range(32):  # the 32 bulk copies of 64 bytes
                cr, ch = lane // 2, lane % 2
                src = (tile * 16 + cr) * K + kb0 * BLOCK + 64 * ch + b * BLOCK
                dst = cr * BLOCK + 64 * (ch ^ (cr & 1))
                slot[dst:dst + 64] = Wflat[src:src + 64]
            banks = {}
            for lane in range(32):
                grp, tig = lane // 4, lane % 4
                for c in range(2):
                    half = c ^ (grp & 1)
                    for rr, row_in_tile in ((0, grp), (1, grp + 8)):
                        off = row_in_tile * BLOCK + 64 * half + 16 * tig
                        got = np.frombuffer(bytes(slot[off:off + 16]), dtype=np.int8).astype(np.int64)
                        row = tile * 16 + row_in_tile
                        k = (kb0 + b) * BLOCK + 64 * c + 16 * tig
                        assert np.array_equal(got, W[row, k:k + 16]), (wid, b, lane, c, rr)
                        if rr == 0:
                            banks.setdefault((lane // 8, c), []).append(((off // 4) % 32, lane))
                        # x at the same 16 k (token grp; the kernel's xp offsets)
                        scale = 2.0 ** S[row, k // 32] if mx else 1.0
                        # the kernel's E8M0 index: ms0 = kb0 * 4 + tig / 2, + b * 4 + 2 c per block / chunk
                        assert k // 32 == kb0 * (BLOCK // 32) + tig // 2 + b * (BLOCK // 32) + 2 * c
                        for tok in range(M):
                            partial[split, tok, row] += int(scale) * int(np.dot(got, X[tok, k:k + 16]))
            # a quad phase of LDS.128: lanes 8q .. 8q + 7 read rows 2q, 2q + 1: 8 x 4 words
            for (q, c), lst in banks.items():
                words = set()
                for bank, lane in lst:
                    words |= {(bank + i) % 32 for i in range(4)}
                assert len(words) == 32, ("bank conflict", q, c, sorted(words))
    y = partial.sum(0)
    ref = X @ W.T if not mx else np.einsum("mk,nk->mn", X, W * (2 ** np.repeat(S, 32, axis=1)))
    assert np.array_equal(y, ref)
    return splits, k_slice


if __name__ == "__main__":
    # per_sm 1: few splits, so a warp streams several blocks (the kernel's kb0 + b offsets)
    for M, N, K, mx, per_sm in [(1, 96, 640, False, 16), (16, 256, 1024, True, 16), (3, 512, 4096, False, 1),
                                (1, 48, 1280, True, 1)]:
        splits, k_slice = emulate(M, N, K, mx, per_sm=per_sm)
        print(f"M={M} N={N} K={K} mx={mx}: {splits} splits of {k_slice}: indices, banks and sums check out")
