// CPU reference: conversion between the plain 4-bit layout and the w4 kernel layout,
// version 3 (both described in csrc/include/lowbit/w4_layout.h): logical word j of row n
// (elements 8j .. 8j+7, nibbles interleaved) is stored at flat word index
// w4::stored_index(n, j, N, K/8) of the int32 (N, K/8) tensor (16-row tiles contiguous).
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include "lowbit/contracts.h"
#include "lowbit/ops.h"
#include "lowbit/w4_layout.h"

namespace lowbit::cpu {

Tensor prepack_w4(const Tensor& w) {
  const auto [N, K] = contract::w4_plain("prepack_w4", w);
  Tensor out = at::empty({N, K / 8}, w.options().dtype(at::kInt));
  const uint8_t* src = w.data_ptr<uint8_t>();
  uint32_t* dst = reinterpret_cast<uint32_t*>(out.data_ptr<int32_t>());
  at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t j = 0; j < K / 8; ++j) {  // j: logical word
        const uint8_t* b = src + n * (K / 2) + j * 4;
        uint32_t word = 0;
        for (int p = 0; p < 8; ++p) {
          int e = w4::kInterleave[p];
          uint32_t code = (b[e / 2] >> (4 * (e % 2))) & 0xF;
          word |= code << (4 * p);
        }
        dst[w4::stored_index(n, j, N, K / 8)] = word;
      }
  });
  return out;
}

Tensor unpack_w4(const Tensor& w) {
  const auto [N, K] = contract::w4_packed("unpack_w4", w);
  Tensor out = at::empty({N, K / 2}, w.options().dtype(at::kByte));
  const uint32_t* src = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  uint8_t* dst = out.data_ptr<uint8_t>();
  at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t j = 0; j < K / 8; ++j) {  // j: logical word
        uint32_t word = src[w4::stored_index(n, j, N, K / 8)];
        uint8_t* b = dst + n * (K / 2) + j * 4;
        for (int i = 0; i < 4; ++i) b[i] = 0;
        for (int p = 0; p < 8; ++p) {
          int e = w4::kInterleave[p];
          b[e / 2] |= uint8_t(((word >> (4 * p)) & 0xF) << (4 * (e % 2)));
        }
      }
  });
  return out;
}

}  // namespace lowbit::cpu
