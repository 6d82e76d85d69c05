// Exhaustive check that lowbit::silu_f32 (lowbit/quant_rules.h) gives the bits of
// g / (1 + lowbit::exp_f32(-g)) -- the SiLU the fused quantizers used before session 16 -- for
// every one of the 2^32 fp32 values of g (NaNs: both NaN). Host only:
//   g++ -O2 -std=c++20 -fopenmp -Icsrc/include tools/check_silu_f32.cpp -o /tmp/check_silu && /tmp/check_silu
// (also with -mfma -ffp-contract=fast: a compiler fusing the products into fmas must not matter).
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "lowbit/quant_rules.h"

int main() {
  uint64_t bad = 0, first = 0;
#pragma omp parallel for reduction(+ : bad) schedule(static, 1 << 20)
  for (int64_t i = 0; i < (int64_t(1) << 32); ++i) {
    const float g = lowbit::bits_float(uint32_t(i));
    const float want = g / (1.0f + lowbit::exp_f32(-g)), got = lowbit::silu_f32(g);
    const bool same = std::isnan(want) ? std::isnan(got) : lowbit::float_bits(want) == lowbit::float_bits(got);
    if (!same) {
      ++bad;
#pragma omp critical
      if (!first) first = uint64_t(i) | (uint64_t(1) << 40);
    }
  }
  if (bad) {
    const float g = lowbit::bits_float(uint32_t(first));
    std::printf("check_silu_f32: %llu values differ, e.g. g = %a: %a vs %a\n", (unsigned long long)bad, g,
                g / (1.0f + lowbit::exp_f32(-g)), lowbit::silu_f32(g));
    return 1;
  }
  std::printf("check_silu_f32: all 2^32 fp32 values of g agree\n");
  return 0;
}
