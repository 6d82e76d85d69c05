#pragma once
// Bumped whenever an op's schema or a stored layout changes; lowbit_ext/__init__.py
// holds the same number and refuses a library built from other sources.
#define LOWBIT_ABI_VERSION 1
