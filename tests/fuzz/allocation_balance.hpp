// SPDX-License-Identifier: BSL-1.0
// Counts allocations and frees in the whole process, every thread, through
// the sanitizer allocator's hooks: the same count libFuzzer keeps to decide
// whether an input may have leaked.

#ifndef MALLARD_TESTS_FUZZ_ALLOCATION_BALANCE_HPP
#define MALLARD_TESTS_FUZZ_ALLOCATION_BALANCE_HPP

#include <sanitizer/allocator_interface.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>

namespace fuzz {

/** Allocations not yet freed, counted since `install()`.

    Why: the server frees a connection's memory on its own thread, a little
    after it closes the socket. libFuzzer counts mallocs and frees around each
    input and, when an input that found new coverage allocated more than it
    freed, runs it again and then scans the whole heap for leaks: for this
    target, without waiting, nearly every such input, at about 50 ms a scan.
    Waiting until the balance is back where it was before the input keeps
    those scans for real leaks, and credits a connection's teardown coverage
    to the input that caused it rather than the next one.
*/
class allocation_balance {
public:
    static void install()
    {
        if (__sanitizer_install_malloc_and_free_hooks(&on_malloc, &on_free) == 0) {
            std::fprintf(stderr, "session_fuzzer: cannot install the allocator hooks\n");
            std::abort();
        }
    }

    static long outstanding()
    {
        return mallocs_.load(std::memory_order_relaxed) - frees_.load(std::memory_order_relaxed);
    }

private:
    static void on_malloc(void const volatile*, std::size_t)
    {
        mallocs_.fetch_add(1, std::memory_order_relaxed);
    }
    static void on_free(void const volatile*) { frees_.fetch_add(1, std::memory_order_relaxed); }

    static inline std::atomic<long> mallocs_{0};
    static inline std::atomic<long> frees_{0};
};

} // namespace fuzz

#endif
