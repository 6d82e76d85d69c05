#pragma once
// Bumped whenever an op's schema or a stored layout changes; lowbit_ext/_library.py
// holds the same number and refuses a library built from other sources.
#define LOWBIT_ABI_VERSION 3  // 3: w4 kernel layout version 3 (w4_layout.h)
