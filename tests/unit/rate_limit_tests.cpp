// SPDX-License-Identifier: BSL-1.0
// A route's receive_rate without sockets (detail/receive_limiter.hpp): what
// each message means for the next read, on a clock the test moves.

#include <mallard/detail/receive_limiter.hpp>
#include <mallard/options.hpp>
#include <mallard/websocket_view.hpp>

#include <catch2/catch.hpp>

#include <chrono>

namespace {

using namespace std::chrono_literals;
using mallard::detail::receive_limiter;
using mallard::detail::receive_verdict;
using clock_type = std::chrono::steady_clock;
using kind = receive_verdict::kind;

struct plain_view : mallard::websocket_view {};

mallard::rate_limit resolved(mallard::rate_limit rate)
{
    return mallard::detail::resolve_limits<plain_view>({.receive_rate = rate}, "test").receive_rate;
}

} // namespace

TEST_CASE("pause: a burst goes through, then each message waits its turn", "[rate]")
{
    auto const start = clock_type::now();
    receive_limiter limiter(resolved({.messages_per_second = 10}), start);
    for (int i = 0; i < 10; ++i) // the default burst: one second's worth
        CHECK(limiter.received(16, start).what == kind::go_on);
    auto const over = limiter.received(16, start);
    CHECK(over.what == kind::pause);
    CHECK(over.wait == std::chrono::duration_cast<clock_type::duration>(100ms));
}

TEST_CASE("pause: a client sending ten times its rate is held to the rate", "[rate]")
{
    // The client sends every 10 ms (100 a second); the reader takes the next
    // message once it is there and the last verdict's wait is over.
    auto const start = clock_type::now();
    receive_limiter limiter(resolved({.messages_per_second = 10}), start);
    auto now = start;
    auto const end = start + 10s;
    int delivered = 0;
    while (now < end) {
        auto const verdict = limiter.received(16, now);
        REQUIRE(verdict.what != kind::close);
        ++delivered;
        now += std::max<clock_type::duration>(10ms, verdict.wait);
    }
    // The burst of 10, then 10 a second for 10 s.
    CHECK(delivered >= 108);
    CHECK(delivered <= 111);
}

TEST_CASE("pause: bytes are limited too, a large message waiting for what it took", "[rate]")
{
    auto const start = clock_type::now();
    receive_limiter limiter(resolved({.bytes_per_second = 1000}), start);
    CHECK(limiter.received(1000, start).what == kind::go_on);
    auto const over = limiter.received(3000, start);
    CHECK(over.what == kind::pause);
    CHECK(over.wait == std::chrono::duration_cast<clock_type::duration>(3s));
    // The debt is paid back at the rate: after it, one second's worth again.
    CHECK(limiter.received(500, start + 3s + 500ms).what == kind::go_on);
}

TEST_CASE("close: the message over the limit closes, refilled tokens allow more", "[rate]")
{
    auto const start = clock_type::now();
    receive_limiter limiter(
        resolved({.messages_per_second = 5, .action = mallard::rate_limit_action::close}), start);
    for (int i = 0; i < 5; ++i)
        CHECK(limiter.received(16, start).what == kind::go_on);
    CHECK(limiter.received(16, start).what == kind::close);
    CHECK(limiter.received(16, start + 200ms).what == kind::go_on); // one refilled
    CHECK(limiter.received(16, start + 200ms).what == kind::close);
    mallard::detail::receive_limiter bytes(
        resolved({.bytes_per_second = 100, .action = mallard::rate_limit_action::close}), start);
    CHECK(bytes.received(101, start).what == kind::close); // larger than the burst
}

TEST_CASE("receive_rate is checked and its bursts resolved when the route is made",
          "[rate][options]")
{
    CHECK(resolved({.messages_per_second = 20}).message_burst == 20);
    CHECK(resolved({.messages_per_second = 0.5}).message_burst == 1);
    CHECK(resolved({.bytes_per_second = 4096}).byte_burst == 4096);
    CHECK(resolved({.messages_per_second = 20, .message_burst = 50}).message_burst == 50);
    CHECK_FALSE(resolved({}).limits());
    CHECK_THROWS_WITH(resolved({.messages_per_second = -1}),
                      Catch::Contains("receive_rate must not have a negative rate"));
    CHECK_THROWS_WITH(resolved({.message_burst = 5}),
                      Catch::Contains("has a message_burst but no messages_per_second"));
    CHECK_THROWS_WITH(resolved({.messages_per_second = 2, .message_burst = 0.5}),
                      Catch::Contains("message_burst must be at least 1"));
}
