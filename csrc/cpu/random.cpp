// Run-time choice of the instruction-set level for the CPU kernels.
#include "random.h"

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
  const RandomTable& (*table)();
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
    {"base", random_table_isa_base, always},
#if defined(HB_HAVE_X86_LEVELS)
    {"avx2", random_table_isa_avx2, has_avx2},
    {"avx512", random_table_isa_avx512, has_avx512},
#endif
};
constexpr int kNumLevels = sizeof(kLevels) / sizeof(kLevels[0]);

const RandomTable* best() {
  const char* want = std::getenv("HEATBATH_CPU_LEVEL");
  const RandomTable* chosen = nullptr;
  for (const Level& l : kLevels) {
    if (!l.supported()) continue;
    if (want && *want && std::strcmp(want, l.name) == 0) return &l.table();
    chosen = &l.table();
  }
  return chosen;
}

std::atomic<const RandomTable*> g_table{nullptr};

}  // namespace

int available_levels(const char** names, int max_names) {
  int k = 0;
  for (const Level& l : kLevels)
    if (l.supported() && k < max_names) names[k++] = l.name;
  return k;
}

const RandomTable& random() {
  const RandomTable* t = g_table.load(std::memory_order_acquire);
  if (!t) {
    t = best();
    g_table.store(t, std::memory_order_release);
  }
  return *t;
}

bool set_level(const char* name) {
  for (const Level& l : kLevels) {
    if (std::strcmp(name, l.name) == 0 && l.supported()) {
      g_table.store(&l.table(), std::memory_order_release);
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
