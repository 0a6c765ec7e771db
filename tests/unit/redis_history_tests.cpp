// SPDX-License-Identifier: BSL-1.0
// The Redis backplane's histories without a Redis (detail/redis/history_store.hpp):
// the numbered messages on a channel, the read script's reply as Redis sends
// it (RESP bytes through hiredis' own reader), and what a joining member gets.

#include <mallard/detail/redis/envelope.hpp>
#include <mallard/detail/redis/history_store.hpp>
#include <mallard/detail/redis/presence_store.hpp>

#include <hiredis/hiredis.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using mallard::detail::redis_reply;

/// One reply parsed from RESP bytes by hiredis, as the link would.
redis_reply parse(std::string const& resp)
{
    auto* reader = redisReaderCreate();
    REQUIRE(redisReaderFeed(reader, resp.data(), resp.size()) == REDIS_OK);
    void* reply = nullptr;
    REQUIRE(redisReaderGetReply(reader, &reply) == REDIS_OK);
    redisReaderFree(reader);
    REQUIRE(reply);
    return redis_reply(static_cast<redisReply*>(reply));
}

std::string bulk(std::string const& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }

/// An XREVRANGE entry: id, then fields o, k, p.
std::string entry(std::string const& id, int offset, std::string const& payload, char kind = 't')
{
    return "*2\r\n" + bulk(id) + "*6\r\n" + bulk("o") + bulk(std::to_string(offset)) + bulk("k") +
           bulk(std::string(1, kind)) + bulk("p") + bulk(payload);
}

std::vector<std::uint64_t> offsets(std::vector<mallard::history_entry> const& entries)
{
    std::vector<std::uint64_t> out;
    for (auto const& e : entries)
        out.push_back(e.offset);
    return out;
}

} // namespace

TEST_CASE("a numbered message opens into offset, epoch, excluded connection and payload",
          "[redis][history]")
{
    mallard::detail::node_id node{'n', 'o', 'd', 'e', '0', '0', '0', '1'};
    auto const header = mallard::detail::numbered_header(node, mallard::opcode::binary);
    auto const sealed = header + "42:00ff00ff00ff00ff:7:9:a:b";
    auto const opened = mallard::detail::open_envelope(sealed);
    REQUIRE(opened);
    CHECK(opened->what == mallard::detail::opened_envelope::kind::numbered);
    CHECK(opened->op == mallard::opcode::binary);
    CHECK(opened->origin == node);
    auto const numbered = mallard::detail::open_numbered(opened->payload);
    REQUIRE(numbered);
    CHECK(numbered->offset == 42);
    CHECK(numbered->epoch == "00ff00ff00ff00ff");
    CHECK(numbered->excluded == 7);
    CHECK(numbered->publish_id == 9);
    CHECK(numbered->payload == "a:b");

    CHECK_FALSE(mallard::detail::open_numbered("x:e:0:1:p"));
    CHECK_FALSE(mallard::detail::open_numbered("0:e:0:1:p")); // offsets begin at 1
    CHECK_FALSE(mallard::detail::open_numbered("5:e:0:p"));
}

TEST_CASE("presence events travel with the member's connection and info", "[redis][presence]")
{
    mallard::detail::node_id node{1, 2, 3, 4, 5, 6, 7, 8};
    auto const sealed = mallard::detail::seal_presence(node, false, 0x0102030405060708ull, "a:n");
    auto const opened = mallard::detail::open_envelope(sealed);
    REQUIRE(opened);
    CHECK(opened->what == mallard::detail::opened_envelope::kind::left);
    CHECK(opened->origin == node);
    CHECK(opened->connection == 0x0102030405060708ull);
    CHECK(opened->payload == "a:n");
    CHECK_FALSE(mallard::detail::open_envelope(sealed.substr(0, 12))); // no ':' after the id
}

TEST_CASE("a presence list from Redis leaves out this server's own members", "[redis][presence]")
{
    auto const reply = parse("*6\r\n" + bulk("00000000000000aa:7") + bulk("ann") +
                             bulk("00000000000000bb:9") + bulk("bob") +
                             bulk("00000000000000aa:8") + bulk("a:b"));
    auto const others = mallard::detail::parse_presence_list(*reply, "00000000000000bb");
    REQUIRE(others);
    REQUIRE(others->size() == 2);
    CHECK((*others)[0].server == "00000000000000aa");
    CHECK((*others)[0].connection == 7);
    CHECK((*others)[0].info == "ann");
    CHECK((*others)[1].info == "a:b");
    CHECK_FALSE(mallard::detail::parse_presence_list(*parse("*2\r\n" + bulk("nocolon") + bulk("x")),
                                                     "b"));
    CHECK_FALSE(mallard::detail::parse_presence_list(*parse("+OK\r\n"), "b"));
}

TEST_CASE("the read script's reply becomes the history, oldest first", "[redis][history]")
{
    auto const reply = parse("*3\r\n" + bulk("e1") + bulk("5") + "*3\r\n" +
                             entry("1700000000300-0", 5, "five") +
                             entry("1700000000200-0", 4, "four", 'b') +
                             entry("1700000000100-0", 3, "three"));
    auto const stored = mallard::detail::parse_stored_history(*reply);
    REQUIRE(stored);
    CHECK(stored->position.epoch == "e1");
    CHECK(stored->position.offset == 5);
    REQUIRE(offsets(stored->entries) == std::vector<std::uint64_t>{3, 4, 5});
    CHECK(*stored->entries[0].payload == "three");
    CHECK(stored->entries[1].op == mallard::opcode::binary);
    CHECK(stored->entries[0].time ==
          std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000100)));

    auto const none = parse("*3\r\n" + bulk("") + bulk("0") + "*0\r\n");
    auto const empty = mallard::detail::parse_stored_history(*none);
    REQUIRE(empty);
    CHECK(empty->position.epoch.empty());
    CHECK(empty->entries.empty());

    CHECK_FALSE(mallard::detail::parse_stored_history(*parse("+OK\r\n")));
    CHECK_FALSE(mallard::detail::parse_stored_history(
        *parse("*3\r\n" + bulk("e1") + bulk("x") + "*0\r\n")));
}

TEST_CASE("a joining member recovers from the stored history as from a local one",
          "[redis][history]")
{
    auto const reply = parse("*3\r\n" + bulk("e1") + bulk("5") + "*3\r\n" +
                             entry("1700000000300-0", 5, "five") +
                             entry("1700000000200-0", 4, "four") +
                             entry("1700000000100-0", 3, "three"));
    auto const stored = *mallard::detail::parse_stored_history(*reply);
    auto const at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000400));

    auto const back = mallard::detail::recover_from(stored, {3, "e1"}, 0ms, at);
    CHECK(back.recovered);
    CHECK(offsets(back.messages) == std::vector<std::uint64_t>{4, 5});
    CHECK(back.position.offset == 5);

    auto const gone = mallard::detail::recover_from(stored, {1, "e1"}, 0ms, at);
    CHECK_FALSE(gone.recovered);
    CHECK(offsets(gone.messages) == std::vector<std::uint64_t>{3, 4, 5});

    auto const other = mallard::detail::recover_from(stored, {4, "e0"}, 0ms, at);
    CHECK_FALSE(other.recovered);
    CHECK(other.position.epoch == "e1");

    // Older than the age bound: forgotten, so position 3 has lost 4.
    auto const aged = mallard::detail::recover_from(stored, {3, "e1"}, 150ms, at);
    CHECK_FALSE(aged.recovered);
    CHECK(offsets(aged.messages) == std::vector<std::uint64_t>{5});

    auto const lost = mallard::detail::recover_from({}, {3, "e1"}, 0ms, at);
    CHECK_FALSE(lost.recovered);
    CHECK(lost.messages.empty());
}
