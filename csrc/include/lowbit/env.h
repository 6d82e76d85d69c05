#pragma once
// Environment knobs (diagnostics and A/B switches), one reader for all of them. Callers keep
// the value in a function-local static: the environment is read once per process.
#include <cstdlib>
#include <cstring>

namespace lowbit::env {

// The variable's value, or "" when unset.
inline const char* str(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// NAME=1 (anything starting with '1').
inline bool flag(const char* name) { return str(name)[0] == '1'; }

// NAME=<integer>, or `fallback` when unset.
inline int integer(const char* name, int fallback) {
  const char* v = str(name);
  return v[0] ? std::atoi(v) : fallback;
}

inline bool is(const char* name, const char* value) { return std::strcmp(str(name), value) == 0; }

}  // namespace lowbit::env
