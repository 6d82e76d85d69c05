"""The 4-bit mixed-input wgmma's A-fragment arithmetic against layout v3, emulated lane by lane on
the CPU (tools/emulate_w4_wgmma.py): the quad-shuffle build (128 tokens per CTA) and the build from
each thread's own words with x permuted in shared memory (<= 64 tokens). A change to the prepack
layout or to the kernel's fragment scheme that breaks either shows here without a GPU; the CUDA
kernels themselves are tested in tests/test_cuda_a16w4.py and tests/test_cuda_mxfp4.py."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import emulate_w4_wgmma as emu  # noqa: E402


def test_quad_shuffle_fragments_are_natural_k_order():
    assert emu.check_shuffles() == 2 * 3 * 8 * 32 * 4  # tiles x blocks x k16 steps x lanes x registers


def test_permuted_x_pairs_each_weight_with_its_k_once():
    # 16 rows x 128 k per (tile, block), each code checked once
    assert emu.check_permuted(tokens=16) == 2 * 3 * 16 * 128
    assert emu.check_permuted(tokens=32) == 2 * 3 * 16 * 128


def test_permutation_is_needed():
    # Without the transpose the own-word fragments meet the wrong x: the check must fail.
    saved = emu.permuted_x_block

    def unpermuted(kb, tokens):
        return [[[[kb * 128 + 64 * box + 8 * (u ^ (row % 8)) + e for e in range(8)] for u in range(8)]
                 for row in range(tokens)] for box in range(2)]

    emu.permuted_x_block = unpermuted
    try:
        try:
            emu.check_permuted()
        except AssertionError:
            return
        raise AssertionError("the emulation accepted unpermuted x")
    finally:
        emu.permuted_x_block = saved
