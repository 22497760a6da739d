// Linked into the modules only when they are linked for an older glibc than
// the build machine's (HEATBATH_GLIBC_STUBS, tools/glibc_stubs.py).
//
// libstdc++ of GCC 11 and later reads glibc's __libc_single_threaded (new in
// glibc 2.32) to skip atomic reference counts while a program has one thread.
// An older glibc has no such symbol, so the modules define their own, hidden,
// saying "maybe threaded": libstdc++ then always takes the atomic path, which
// is correct whatever the thread count.
extern "C" {
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;
}
