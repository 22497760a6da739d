// Run-time choice of the instruction-set level for the CPU kernels.
//
// A file csrc/cpu/<name>_kernels.cpp is compiled once per level (HB_ISA =
// isa_base, isa_avx2, isa_avx512; see CMakeLists.txt). It fills a table of
// function pointers (a struct declared in a header, outside the HB_ISA
// namespace) and exports it with HB_EXPORT_ISA_TABLE. Callers declare the
// table with HB_DECLARE_ISA_TABLE and get the copy for the level in use:
//
//   // foo.h
//   struct FooTable { void (*run)(const float*, float*, i64); };
//   HB_DECLARE_ISA_TABLE(FooTable, foo_table)
//   // foo_kernels.cpp
//   namespace heatbath { inline namespace HB_ISA { namespace {
//   void run(const float*, float*, i64) { ... }
//   const cpu::FooTable kFoo = {run};
//   }}}
//   HB_EXPORT_ISA_TABLE(FooTable, foo_table, kFoo)
//   // anywhere: heatbath::cpu::foo_table().run(x, y, n);
//
// One level is in use for all tables at a time: the best this CPU supports,
// or the one named by HEATBATH_CPU_LEVEL=base|avx2|avx512 at load time, or
// set_level(). Kernels must give identical results at every level.
#pragma once
#include <cstdint>

namespace heatbath {
namespace cpu {

using i64 = std::int64_t;
using u64 = std::uint64_t;
using u32 = std::uint32_t;

// Index of the level in use: 0 base, 1 avx2, 2 avx512.
int level_index();
const char* level_name();
// Levels compiled in and supported by this CPU, best last.
int available_levels(const char** names, int max_names);
// Returns false when the level is unknown or unsupported here.
bool set_level(const char* name);

// Thread counts are capped: a count far above the cores only costs memory
// (the OpenMP runtime allocates per thread), and a huge one aborts the process.
constexpr int kMaxThreads = 1024;

int max_threads();
void set_threads(int n);

}  // namespace cpu
}  // namespace heatbath

#define HB_ISA_CAT2(a, b) a##b
#define HB_ISA_CAT(a, b) HB_ISA_CAT2(a, b)

#if defined(HB_HAVE_X86_LEVELS)
#define HB_DECLARE_ISA_TABLE(Type, name)                                   \
  namespace heatbath {                                                     \
  namespace cpu {                                                          \
  const Type& name##_isa_base();                                           \
  const Type& name##_isa_avx2();                                           \
  const Type& name##_isa_avx512();                                         \
  inline const Type& name() {                                              \
    static const Type* const tables[3] = {&name##_isa_base(), &name##_isa_avx2(), \
                                          &name##_isa_avx512()};           \
    return *tables[level_index()];                                         \
  }                                                                        \
  }                                                                        \
  }
#else
#define HB_DECLARE_ISA_TABLE(Type, name) \
  namespace heatbath {                   \
  namespace cpu {                        \
  const Type& name##_isa_base();         \
  inline const Type& name() { return name##_isa_base(); } \
  }                                      \
  }
#endif

// In a *_kernels.cpp, at global scope: export `object` (a Type defined in the
// HB_ISA namespace of this file) as name##_<level>().
#define HB_EXPORT_ISA_TABLE(Type, name, object)                                              \
  namespace heatbath {                                                                       \
  namespace cpu {                                                                            \
  const Type& HB_ISA_CAT(name##_, HB_ISA)() { return ::heatbath::HB_ISA::object; }            \
  }                                                                                          \
  }
