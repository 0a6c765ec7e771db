// SPDX-License-Identifier: BSL-1.0
// A libFuzzer target: arbitrary client byte streams into real mallard server
// sessions, the HTTP upgrade and then WebSocket frames, over TCP to a server
// in this process. Built only with clang (-DMALLARD_BUILD_FUZZERS=ON) under
// AddressSanitizer and UndefinedBehaviorSanitizer; see tests/fuzz/README.md.
//
// The first byte of an input picks what the rest is (byte % mode_count):
//   0  the whole client byte stream, opening handshake included;
//   1  frames after a fixed upgrade to the exact echo route, no extension;
//   2  ... with `Sec-WebSocket-Extensions: permessage-deflate`;
//   3  ... with permessage-deflate and no context takeover either way;
//   4  frames after a fixed upgrade to the plain route (small limits).
// Modes 1 to 4 spend no mutations on rediscovering a valid handshake.
//
// Findings: memory errors and undefined behaviour anywhere in the server
// (same process), leaks (libFuzzer's leak detection), an error logged by the
// server, and a server that no longer answers a well-formed echo (checked
// every `health_check_every` inputs and at exit). A health check failure is
// reported on the input that happened to run last, which need not be the one
// that broke the server: replay the recent inputs to find it.

#include "allocation_balance.hpp"
#include "fuzz_server.hpp"
#include "raw_exchange.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <thread>

namespace {

using namespace std::chrono_literals;

// The Host header and key are fixed: their values do not matter to the
// server, and fixed bytes keep a mode's prefix the same for every input.
#define MALLARD_FUZZ_UPGRADE(path, extra)                                                          \
    "GET " path " HTTP/1.1\r\n"                                                                    \
    "Host: 127.0.0.1\r\n"                                                                          \
    "Upgrade: websocket\r\n"                                                                       \
    "Connection: Upgrade\r\n"                                                                      \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                              \
    "Sec-WebSocket-Version: 13\r\n" extra "\r\n"

/// What comes before the input's bytes, by mode (the index).
constexpr std::array<std::string_view, 5> mode_prefixes = {
    "",
    MALLARD_FUZZ_UPGRADE("/ws/echo", ""),
    MALLARD_FUZZ_UPGRADE("/ws/echo", "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
    MALLARD_FUZZ_UPGRADE("/ws/echo", "Sec-WebSocket-Extensions: permessage-deflate; "
                                     "client_no_context_takeover; server_no_context_takeover\r\n"),
    MALLARD_FUZZ_UPGRADE("/ws/plain", ""),
};

#undef MALLARD_FUZZ_UPGRADE

/// After our FIN a well-behaved server closes within milliseconds; this
/// only bounds the rare input the server legitimately keeps working on (a
/// 16 MiB inflation under the sanitizers), which then finishes in the
/// background while the next input runs.
constexpr auto exchange_deadline = 1000ms;

/// How long to wait, after the server has closed the connection, for it to
/// free what it allocated for the input (see allocation_balance.hpp). A
/// connection's teardown takes microseconds; an input that leaves memory
/// behind for good (a cache warming up, a table growing) pays this once.
constexpr auto settle_deadline = 5ms;

constexpr unsigned long health_check_every = 1000;

/// After the last input, how long every connection gets to be closed.
constexpr auto drain_deadline = 15s;

std::unique_ptr<fuzz::fuzz_server> server;
unsigned long inputs_run = 0;
unsigned long deadlines_hit = 0;
unsigned long unsettled = 0;

/// Waits until the process has no more allocations outstanding than
/// `before`, or the deadline passes; returns whether it settled.
bool settle(long before)
{
    auto const until = std::chrono::steady_clock::now() + settle_deadline;
    while (fuzz::allocation_balance::outstanding() > before) {
        if (std::chrono::steady_clock::now() >= until)
            return false;
        std::this_thread::sleep_for(20us);
    }
    return true;
}

void check_health()
{
    if (!server->answers_echo()) {
        std::fprintf(stderr, "session_fuzzer: FINDING: the server no longer answers an echo "
                             "(after %lu inputs)\n",
                     inputs_run);
        std::abort();
    }
}

/// At exit (libFuzzer calls exit() when -max_total_time or -runs is
/// reached): a last health check, then no connection may outlive its
/// client, then a clean stop, before static destructors run under the
/// server's threads.
void finish()
{
    check_health();
    auto const until = std::chrono::steady_clock::now() + drain_deadline;
    while (server->connection_count() != 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(10ms);
    if (auto const left = server->connection_count(); left != 0) {
        std::fprintf(stderr, "session_fuzzer: FINDING: %zu connections still open %lld s after "
                             "their clients closed\n",
                     left, static_cast<long long>(drain_deadline.count()));
        std::abort();
    }
    server->stop();
    std::fprintf(stderr,
                 "session_fuzzer: %lu inputs, %lu kept open past the %lld ms deadline, %lu "
                 "with allocations outstanding after %lld ms\n",
                 inputs_run, deadlines_hit, static_cast<long long>(exchange_deadline.count()),
                 unsettled, static_cast<long long>(settle_deadline.count()));
    server.reset();
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    fuzz::allocation_balance::install();
    server = std::make_unique<fuzz::fuzz_server>();
    check_health(); // a server that cannot echo before fuzzing makes every finding meaningless
    std::atexit(finish);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    if (size == 0)
        return 0;
    auto const mode = data[0] % mode_prefixes.size();
    std::string_view const body(reinterpret_cast<char const*>(data + 1), size - 1);
    auto const outstanding_before = fuzz::allocation_balance::outstanding();
    if (fuzz::exchange(server->port(), mode_prefixes[mode], body, exchange_deadline) ==
        fuzz::exchange_end::deadline)
        ++deadlines_hit;
    if (!settle(outstanding_before))
        ++unsettled;
    if (++inputs_run % health_check_every == 0)
        check_health();
    return 0;
}
