// SPDX-License-Identifier: BSL-1.0
// What a server thread does over its memory budget, decided without sockets
// (detail/memory_budget.hpp): who pauses, who reads again, who is closed.

#include <mallard/detail/memory_budget.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

namespace {

using mallard::detail::memory_actions;
using mallard::detail::memory_holder;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

auto const now = clock_type::now();
constexpr auto timeout = 5s;
constexpr std::size_t floor = 10; // pause_floor: holders of less read on

memory_actions decide(std::vector<memory_holder> const& holders, std::size_t share,
                      clock_type::time_point at, clock_type::duration wait)
{
    return mallard::detail::decide_memory(holders, share, floor, at, wait);
}

memory_holder holding(std::size_t bytes) { return {bytes, false, false, {}}; }
memory_holder paused(std::size_t bytes, clock_type::duration ago)
{
    return {bytes, true, false, now - ago};
}

} // namespace

TEST_CASE("Within the share nothing pauses, and paused connections read again", "[memory]")
{
    auto const actions = decide({holding(40), paused(50, 1s), holding(0)}, 100, now, timeout);
    CHECK(actions.total == 90);
    CHECK(actions.pause.empty());
    CHECK(actions.close.empty());
    CHECK(actions.resume == std::vector<std::size_t>{1});
}

TEST_CASE("Over the share, every holder of at least the floor pauses, smaller ones read on",
          "[memory]")
{
    auto const actions =
        decide({holding(5), holding(60), holding(30), holding(50), holding(9)}, 100, now, timeout);
    CHECK(actions.total == 154);
    CHECK(actions.pause == std::vector<std::size_t>{1, 2, 3});
    CHECK(actions.resume.empty());
    CHECK(actions.close.empty());

    // Already paused ones are not paused again, nor closed before the timeout.
    auto const later =
        decide({holding(5), paused(60, 1s), holding(30), paused(50, 1s)}, 100, now, timeout);
    CHECK(later.pause == std::vector<std::size_t>{2});
    CHECK(later.close.empty());
}

TEST_CASE("Paused past the timeout while still over: closed, most first, only to cover it",
          "[memory]")
{
    // Excess 70; both big ones are paused, only the 80 has waited long enough.
    auto const actions =
        decide({holding(5), paused(80, 6s), paused(70, 1s), holding(5)}, 90, now, timeout);
    CHECK(actions.close == std::vector<std::size_t>{1});
    CHECK(actions.pause.empty());

    // Both long paused: the 80 alone covers the excess, so the 70 stays.
    auto const both =
        decide({holding(5), paused(80, 6s), paused(70, 6s), holding(5)}, 90, now, timeout);
    CHECK(both.close == std::vector<std::size_t>{1});
    // An excess of 150: both go.
    auto const all =
        decide({holding(5), paused(80, 6s), paused(70, 6s), holding(5)}, 10, now, timeout);
    CHECK(all.close == std::vector<std::size_t>{1, 2});
}

TEST_CASE("Small holders are never paused or closed, however many", "[memory]")
{
    std::vector<memory_holder> holders(100, holding(9)); // well-behaved: 900 bytes in all
    holders.push_back(paused(1000, 6s));                 // one peer holding a large frame
    auto const actions = decide(holders, 500, now, timeout);
    CHECK(actions.pause.empty());
    CHECK(actions.close == std::vector<std::size_t>{100});
    // Over with small holders alone: nobody to pause, nobody to close.
    auto const small = decide(std::vector<memory_holder>(100, holding(9)), 500, now, timeout);
    CHECK(small.pause.empty());
    CHECK(small.close.empty());
}

TEST_CASE("What closing connections hold counts as freed already", "[memory]")
{
    memory_holder closing = holding(100);
    closing.closing = true;
    // 180 over a share of 100: the closing 100 covers the excess of 80.
    auto const actions =
        decide({closing, paused(60, 6s), paused(20, 6s)}, 100, now, timeout);
    CHECK(actions.total == 180);
    CHECK(actions.close.empty());
    CHECK(actions.pause.empty());
    // 220: 100 going, 20 more to close; the 60 is the largest.
    auto const partly = decide({closing, paused(60, 6s), paused(60, 6s)}, 100, now, timeout);
    CHECK(partly.close == std::vector<std::size_t>{1});
}
