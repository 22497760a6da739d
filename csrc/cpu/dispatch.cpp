#include "dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace heatbath {
namespace cpu {
namespace {

struct Level {
  const char* name;
  bool (*supported)();
};

bool always() { return true; }
#if defined(HB_HAVE_X86_LEVELS)
bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
}
bool has_avx512() {
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}
#endif

const Level kLevels[] = {
    {"base", always},
#if defined(HB_HAVE_X86_LEVELS)
    {"avx2", has_avx2},
    {"avx512", has_avx512},
#endif
};
constexpr int kNumLevels = sizeof(kLevels) / sizeof(kLevels[0]);

int initial_level() {
  const char* want = std::getenv("HEATBATH_CPU_LEVEL");
  int chosen = 0;
  for (int i = 0; i < kNumLevels; ++i) {
    if (!kLevels[i].supported()) continue;
    if (want && *want && std::strcmp(want, kLevels[i].name) == 0) return i;
    chosen = i;
  }
  return chosen;
}

std::atomic<int> g_level{-1};

}  // namespace

int level_index() {
  int l = g_level.load(std::memory_order_relaxed);
  if (l < 0) {
    l = initial_level();
    g_level.store(l, std::memory_order_relaxed);
  }
  return l;
}

const char* level_name() { return kLevels[level_index()].name; }

int available_levels(const char** names, int max_names) {
  int k = 0;
  for (const Level& l : kLevels)
    if (l.supported() && k < max_names) names[k++] = l.name;
  return k;
}

bool set_level(const char* name) {
  for (int i = 0; i < kNumLevels; ++i) {
    if (std::strcmp(name, kLevels[i].name) == 0 && kLevels[i].supported()) {
      g_level.store(i, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_threads(int n) {
#if defined(_OPENMP)
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

}  // namespace cpu
}  // namespace heatbath
