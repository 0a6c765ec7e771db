// SPDX-License-Identifier: BSL-1.0
// Heap allocations per echoed message, counted on the server's thread, held
// to a budget: a change that adds an allocation to the hot path fails here
// instead of showing up, later, as a slower benchmark.
//
// This program replaces the global operator new to count calls per thread,
// so it is an executable of its own, and it is not built with the
// sanitizers (which bring their own allocator).

#include "../integration/support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>

namespace {

thread_local std::uint64_t allocations_on_this_thread = 0;

void* counted_allocation(std::size_t size, std::size_t alignment)
{
    ++allocations_on_this_thread;
    void* p = alignment <= alignof(std::max_align_t)
                  ? std::malloc(size == 0 ? 1 : size)
                  : std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
    if (!p)
        throw std::bad_alloc();
    return p;
}

} // namespace

// The scalar forms; the array and nothrow forms of libstdc++ call these.
void* operator new(std::size_t size) { return counted_allocation(size, 1); }
void* operator new(std::size_t size, std::align_val_t alignment)
{
    return counted_allocation(size, static_cast<std::size_t>(alignment));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

using namespace std::chrono_literals;

// The server thread's count when the echo view saw message `warmup`, and
// when it saw message `warmup + measured`.
constexpr std::size_t warmup = 200;
constexpr std::size_t measured = 1000;
std::atomic<std::uint64_t> count_at_start{0}, count_at_end{0};

class counting_echo : public mallard::websocket_view {
public:
    static constexpr std::size_t max_message_size = 1 << 20;

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        if (received_ == warmup)
            count_at_start = allocations_on_this_thread;
        if (received_ == warmup + measured)
            count_at_end = allocations_on_this_thread;
        ++received_;
        if (op == mallard::opcode::binary)
            co_await send_binary(data);
        else
            co_await send_text(data);
    }

private:
    std::size_t received_ = 0;
};

/// Heap allocations on the server's thread per message echoed, `in_flight`
/// messages sent before their echoes are read, after a warm-up that lets
/// buffers reach their size.
double allocations_per_echo(std::string const& payload, bool binary, std::size_t in_flight = 1)
{
    test::log_capture log;
    test::running_server srv{test::test_options(log, 1),
                             mallard::router{mallard::path<counting_echo>("/echo", "echo")}};
    mallard::testing::client c{srv.port(), "/echo"};
    constexpr std::size_t total = warmup + measured + 1;
    for (std::size_t sent = 0; sent < total;) {
        auto const batch = std::min(in_flight, total - sent);
        for (std::size_t i = 0; i < batch; ++i) {
            if (binary)
                c.send_binary(payload);
            else
                c.send_text(payload);
        }
        for (std::size_t i = 0; i < batch; ++i) {
            auto const echo = c.receive(10s);
            REQUIRE(echo);
            REQUIRE(echo->data.size() == payload.size());
        }
        sent += batch;
    }
    return static_cast<double>(count_at_end - count_at_start) / measured;
}

} // namespace

// Steady state allocates nothing: the queue keeps its capacity and a written
// message's buffer carries the next one. The budget allows one stray
// allocation per 100 messages, far below one per message.
constexpr double budget = 0.01;

TEST_CASE("An echoed 16-byte text allocates nothing on the server", "[allocations]")
{
    auto const per_echo = allocations_per_echo(std::string(16, 'x'), false);
    INFO("allocations per echo: " << per_echo);
    CHECK(per_echo <= budget);
}

TEST_CASE("An echoed 16 KiB binary allocates nothing on the server", "[allocations]")
{
    auto const per_echo = allocations_per_echo(std::string(16 * 1024, 'b'), true);
    INFO("allocations per echo: " << per_echo);
    CHECK(per_echo <= budget);
}

TEST_CASE("Echoes of 16 messages in flight, sent together, allocate nothing", "[allocations]")
{
    auto const per_echo = allocations_per_echo(std::string(16, 'x'), false, 16);
    INFO("allocations per echo: " << per_echo);
    CHECK(per_echo <= budget);
}
