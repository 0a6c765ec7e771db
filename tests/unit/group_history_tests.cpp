// SPDX-License-Identifier: BSL-1.0
// Groups with history and presence without sockets: how a group numbers and
// keeps its messages (detail/group_log.hpp), what a member joining from a
// position gets back, and which policy a group name takes
// (detail/group_policies.hpp).

#include <mallard/detail/group_log.hpp>
#include <mallard/detail/group_policies.hpp>
#include <mallard/options.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using mallard::detail::decide_recovery;
using mallard::detail::group_log;

auto text(std::string s) { return std::make_shared<std::string const>(std::move(s)); }

std::vector<std::uint64_t> offsets(std::vector<mallard::history_entry> const& entries)
{
    std::vector<std::uint64_t> out;
    for (auto const& e : entries)
        out.push_back(e.offset);
    return out;
}

group_log filled(std::size_t keep, int messages, group_log::clock::time_point at)
{
    group_log log("e1", keep, 0ms);
    for (int i = 1; i <= messages; ++i)
        log.append(text("m" + std::to_string(i)), mallard::opcode::text, at);
    return log;
}

} // namespace

TEST_CASE("a group numbers its messages from 1 and keeps the newest", "[history]")
{
    auto const now = group_log::clock::now();
    group_log log("e1", 3, 0ms);
    CHECK(log.position().offset == 0);
    CHECK(log.append(text("a"), mallard::opcode::text, now).offset == 1);
    CHECK(log.append(text("b"), mallard::opcode::binary, now).offset == 2);
    for (int i = 0; i < 3; ++i)
        log.append(text("c"), mallard::opcode::text, now);
    auto const kept = log.snapshot(now);
    CHECK(kept.position.offset == 5);
    CHECK(kept.position.epoch == "e1");
    CHECK(offsets(kept.messages) == std::vector<std::uint64_t>{3, 4, 5});
}

TEST_CASE("a history with an age bound forgets older messages", "[history]")
{
    auto const start = group_log::clock::now();
    group_log log("e1", 100, 10s);
    log.append(text("old"), mallard::opcode::text, start);
    log.append(text("newer"), mallard::opcode::text, start + 6s);
    CHECK(offsets(log.snapshot(start + 11s).messages) == std::vector<std::uint64_t>{2});
    CHECK(offsets(log.snapshot(start + 17s).messages).empty());
    CHECK(log.position().offset == 2); // the numbering goes on
}

TEST_CASE("a member at a kept position gets exactly the messages after it", "[history]")
{
    auto const now = group_log::clock::now();
    auto log = filled(10, 10, now);
    auto const back = log.recover({3, "e1"}, now);
    CHECK(back.recovered);
    CHECK(offsets(back.messages) == std::vector<std::uint64_t>{4, 5, 6, 7, 8, 9, 10});
    CHECK(back.position.offset == 10);
    CHECK(back.position.epoch == "e1");

    auto const current = log.recover({10, "e1"}, now);
    CHECK(current.recovered);
    CHECK(current.messages.empty());
}

TEST_CASE("a member whose position was pushed out gets the last messages, not recovered",
          "[history]")
{
    auto const now = group_log::clock::now();
    auto log = filled(5, 10, now); // keeps 6-10
    auto const edge = log.recover({5, "e1"}, now);
    CHECK(edge.recovered); // 6 is still there: nothing was missed
    CHECK(offsets(edge.messages) == std::vector<std::uint64_t>{6, 7, 8, 9, 10});
    auto const gone = log.recover({4, "e1"}, now); // 5 is gone
    CHECK_FALSE(gone.recovered);
    CHECK(offsets(gone.messages) == std::vector<std::uint64_t>{6, 7, 8, 9, 10});
}

TEST_CASE("another epoch, no position or a position never given out is not recovered",
          "[history]")
{
    auto const now = group_log::clock::now();
    auto log = filled(10, 4, now);
    for (auto const& from : {mallard::since{2, "other"}, mallard::since{}, mallard::since{2, ""},
                             mallard::since{5, "e1"}}) {
        auto const back = log.recover(from, now);
        CHECK_FALSE(back.recovered);
        CHECK(offsets(back.messages) == std::vector<std::uint64_t>{1, 2, 3, 4});
        CHECK(back.position.epoch == "e1");
    }
}

TEST_CASE("recovery decisions at the edges", "[history]")
{
    // Nothing kept (all aged out), the client saw the last one: recovered.
    CHECK(decide_recovery({7, "e"}, "e", 8, 7).recovered);
    // Nothing kept and the client is behind: something was forgotten.
    CHECK_FALSE(decide_recovery({6, "e"}, "e", 8, 7).recovered);
    // An empty history, a client with no messages: recovered, nothing to send.
    auto const empty = decide_recovery({0, "e"}, "e", 1, 0);
    CHECK(empty.recovered);
    CHECK(empty.after == 0);
}

TEST_CASE("group policies match a name or a prefix, first match wins", "[history]")
{
    mallard::detail::group_policies policies({{.pattern = "room:vip", .history_size = 1000},
                                              {.pattern = "room:*", .history_size = 50},
                                              {.pattern = "lobby", .presence = true}});
    REQUIRE(policies.find("room:vip"));
    CHECK(policies.find("room:vip")->history_size == 1000);
    CHECK(policies.find("room:a")->history_size == 50);
    CHECK(policies.find("room:")->history_size == 50);
    CHECK(policies.find("lobby")->presence);
    CHECK(policies.find("lobby2") == nullptr);
    CHECK(policies.find("roo") == nullptr);
}

TEST_CASE("a group policy that cannot work is refused at setup, saying what to fix",
          "[history]")
{
    auto const refused = [](mallard::group_policy policy) {
        try {
            mallard::detail::check_group_policy(policy);
        } catch (std::invalid_argument const& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK_THAT(refused({}), Catch::Contains("empty pattern"));
    CHECK_THAT(refused({.pattern = "a*b", .history_size = 1}), Catch::Contains("only one final '*'"));
    CHECK_THAT(refused({.pattern = "a", .history_age = 5s}), Catch::Contains("without history_size"));
    CHECK_THAT(refused({.pattern = "a", .format = [](auto, auto const&) { return std::string(); }}),
               Catch::Contains("format without history_size"));
    CHECK_THAT(refused({.pattern = "a",
                        .presence_messages = [](auto const&) { return std::vector<std::string>(); }}),
               Catch::Contains("without presence = true"));
    CHECK(refused({.pattern = "room:*", .history_size = 10, .history_age = 1h}).empty());

    mallard::server_options options;
    options.groups.push_back({.pattern = "x*y"});
    CHECK_THROWS_WITH(mallard::detail::check_server_options(options),
                      Catch::Contains("server_options::groups"));
}
