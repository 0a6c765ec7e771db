// SPDX-License-Identifier: BSL-1.0
// Groups with history and presence on a real server: offsets, recovery on
// join racing live publishes, eviction, presence lists and their notices, and
// JSON messages (<mallard/json.hpp>).

#include "support.hpp"

#include <mallard/json.hpp>

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <charconv>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using test::probe;

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int joiner_count = 40; // sanitizers cost 5-15x; keep the run short
#else
constexpr int joiner_count = 100;
#endif

/// Joins room:<group> for /h/<group>?since=N&epoch=E&who=NAME and first sends its client one
/// message: "recovered|<0 or 1>|<epoch>|<offset>,<offset>,...", the offsets of
/// the messages its join handed back. Live messages then arrive as the
/// group's format makes them: "<offset>:<payload>".
class history_view : public mallard::websocket_view {
public:
    explicit history_view(probe& p) : probe_(p) {}

    mallard::task<> on_open() override
    {
        mallard::since from;
        if (auto const since = request().query_param("since")) {
            from.offset = std::stoull(*since);
            from.epoch = request().query_param("epoch").value_or("");
        }
        auto const joined = co_await join("room:" + request().path_param("group"), from,
                                          request().query_param("who").value_or(""));
        co_await send_text(summary(joined));
        probe_.record("open");
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode) override
    {
        if (data == "presence") {
            auto const members = co_await presence("room:" + request().path_param("group"));
            std::string names = "members";
            for (auto const& m : members)
                names += ":" + m.info;
            co_await send_text(names);
        } else {
            publish("room:" + request().path_param("group"), std::string(data));
        }
    }

private:
    static std::string summary(mallard::join_result const& joined)
    {
        std::string text = "recovered|" + std::string(joined.recovered ? "1" : "0") + "|" +
                           joined.position.epoch + "|";
        for (auto const& entry : joined.messages)
            text += std::to_string(entry.offset) + ",";
        return text;
    }

    probe& probe_;
};

mallard::server_options history_options(test::log_capture& log, std::size_t keep,
                                        unsigned threads = 2)
{
    auto options = test::test_options(log, threads);
    mallard::group_policy rooms;
    rooms.pattern = "room:*";
    rooms.history_size = keep;
    rooms.format = [](std::string_view, mallard::history_entry const& entry) {
        return std::to_string(entry.offset) + ":" + *entry.payload;
    };
    rooms.presence = true;
    rooms.presence_messages = [](mallard::presence_change const& change) {
        std::string list;
        for (auto const& m : change.members)
            list += (list.empty() ? "" : ",") + m.info;
        auto const what = change.what == mallard::presence_change::kind::joined ? "joined" : "left";
        return std::vector<std::string>{std::string(what) + ":" + change.member.info,
                                        "presence:" + list};
    };
    options.groups.push_back(std::move(rooms));
    return options;
}

/// Joins "lobby", which no policy names, the same way.
class lobby_view : public history_view {
public:
    using history_view::history_view;

    mallard::task<> on_open() override
    {
        // Named: g++ 12 breaks a braced temporary inside a co_await.
        mallard::since const from{3, "x"};
        auto const joined = co_await join("lobby", from);
        co_await send_text("recovered|" + std::string(joined.recovered ? "1" : "0") + "|" +
                           joined.position.epoch + "|");
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode) override
    {
        publish("lobby", std::string(data));
        co_return;
    }
};

mallard::router history_routes(probe& p)
{
    return mallard::router{
        mallard::path("/h/<group>", [&p] { return std::make_unique<history_view>(p); }, "history"),
        mallard::path("/lobby", [&p] { return std::make_unique<lobby_view>(p); }, "lobby")};
}

/// What the first message of a history_view says.
struct summary {
    bool recovered = false;
    std::string epoch;
    std::vector<std::uint64_t> offsets;
};

summary parse_summary(std::string const& text)
{
    REQUIRE(text.starts_with("recovered|"));
    summary s;
    auto const second = text.find('|', 10);
    auto const third = text.find('|', second + 1);
    s.recovered = text.substr(10, second - 10) == "1";
    s.epoch = text.substr(second + 1, third - second - 1);
    for (auto at = third + 1; at < text.size();) {
        auto const comma = text.find(',', at);
        s.offsets.push_back(std::stoull(text.substr(at, comma - at)));
        at = comma + 1;
    }
    return s;
}

/// The offset of a live message "<offset>:<payload>"; 0 for anything else.
std::uint64_t offset_of(std::string const& text)
{
    std::uint64_t offset = 0;
    auto const colon = text.find(':');
    if (colon == std::string::npos)
        return 0;
    auto const [end, error] = std::from_chars(text.data(), text.data() + colon, offset);
    return error == std::errc{} && end == text.data() + colon ? offset : 0;
}

std::string target(std::string const& group, std::uint64_t since, std::string const& epoch,
                   std::string const& who = "")
{
    return "/h/" + group + "?since=" + std::to_string(since) + "&epoch=" + epoch + "&who=" + who;
}

} // namespace

TEST_CASE("1,000 publishes racing 100 joins from a position: each joiner gets every later "
          "message once, in order",
          "[groups][history]")
{
    constexpr std::uint64_t publishes = 1000;
    probe p;
    test::log_capture log;
    test::running_server srv(history_options(log, 2000, 4), history_routes(p));
    auto& server = srv.get();
    server.publish("room:race", "first");
    auto const epoch = server.history("room:race").position.epoch;
    REQUIRE(epoch.size() == 16);

    // The publisher runs on its own thread while the joiners connect, ten
    // publishes per joiner, so that joins land among them; each joiner
    // starts from a position a little behind the group's last offset when
    // it connects, so its join hands back a few messages and the rest arrive
    // live, some of them posted before the join and skipped.
    std::atomic<int> connected{0};
    std::thread publisher([&] {
        for (std::uint64_t n = 0; n < publishes; ++n) {
            while (connected.load() < static_cast<int>(n * joiner_count / publishes))
                std::this_thread::yield();
            server.publish("room:race", "m" + std::to_string(n));
        }
    });
    std::vector<std::unique_ptr<mallard::testing::client>> joiners;
    std::vector<std::uint64_t> starts;
    for (int i = 0; i < joiner_count; ++i) {
        auto const now = server.history("room:race").position.offset;
        auto const from = now >= std::uint64_t(i % 7) ? now - i % 7 : 0;
        starts.push_back(from);
        joiners.push_back(std::make_unique<mallard::testing::client>(
            srv.port(), target("race", from, epoch)));
        ++connected;
    }
    publisher.join();
    auto const last = publishes + 1;
    CHECK(server.history("room:race").position.offset == last);

    int joined_mid_race = 0;
    for (std::size_t i = 0; i < joiners.size(); ++i) {
        auto& c = *joiners[i];
        auto const first = c.receive(20s);
        REQUIRE(first);
        auto const s = parse_summary(first->data);
        CHECK(s.recovered);
        CHECK(s.epoch == epoch);
        std::vector<std::uint64_t> seen = s.offsets;
        joined_mid_race += !s.offsets.empty() && s.offsets.back() < last;
        while (seen.empty() || seen.back() < last) {
            auto const m = c.receive(20s);
            REQUIRE(m);
            auto const offset = offset_of(m->data);
            if (offset != 0) // presence notices carry none
                seen.push_back(offset);
        }
        std::vector<std::uint64_t> expected;
        for (auto n = starts[i] + 1; n <= last; ++n)
            expected.push_back(n);
        CHECK(seen == expected);
    }
    // The race happened: joiners came in while the publisher ran.
    CHECK(joined_mid_race > 0);
}

TEST_CASE("A position pushed out of the history, or of another epoch, is not recovered",
          "[groups][history]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(history_options(log, 5), history_routes(p));
    for (int n = 1; n <= 10; ++n)
        srv.get().publish("room:small", "m" + std::to_string(n));
    auto const epoch = srv.get().history("room:small").position.epoch;

    mallard::testing::client evicted{srv.port(), target("small", 2, epoch)};
    auto const gone = parse_summary(evicted.receive()->data);
    CHECK_FALSE(gone.recovered);
    CHECK(gone.offsets == std::vector<std::uint64_t>{6, 7, 8, 9, 10});

    mallard::testing::client edge{srv.port(), target("small", 5, epoch)};
    auto const kept = parse_summary(edge.receive()->data);
    CHECK(kept.recovered);
    CHECK(kept.offsets == std::vector<std::uint64_t>{6, 7, 8, 9, 10});

    mallard::testing::client stranger{srv.port(), target("small", 9, "0123456789abcdef")};
    auto const other = parse_summary(stranger.receive()->data);
    CHECK_FALSE(other.recovered);
    CHECK(other.epoch == epoch);
    CHECK(other.offsets == std::vector<std::uint64_t>{6, 7, 8, 9, 10});

    // A group without a policy has neither offsets nor a history.
    mallard::testing::client plain{srv.port(), "/lobby?since=3&epoch=x"};
    auto const none = parse_summary(plain.receive()->data);
    CHECK_FALSE(none.recovered);
    CHECK(none.epoch.empty());
    CHECK(none.offsets.empty());
    plain.send_text("hello");
    CHECK(plain.receive()->data == "hello"); // as published, no offset
    CHECK(srv.get().history("lobby").messages.empty());
    CHECK(srv.get().history("lobby").position.epoch.empty());
}

TEST_CASE("Presence lists the members with their values and tells them who joins and leaves",
          "[groups][presence]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(history_options(log, 10), history_routes(p));
    mallard::testing::client ann{srv.port(), target("team", 0, "", "ann")};
    CHECK(ann.receive()->data.starts_with("recovered|0|"));
    CHECK(ann.receive()->data == "joined:ann");
    CHECK(ann.receive()->data == "presence:ann");

    mallard::testing::client bob{srv.port(), target("team", 0, "", "bob")};
    CHECK(bob.receive()->data.starts_with("recovered|"));
    CHECK(bob.receive()->data == "joined:bob");
    CHECK(bob.receive()->data == "presence:ann,bob");
    CHECK(ann.receive()->data == "joined:bob");
    CHECK(ann.receive()->data == "presence:ann,bob");

    auto const listed = srv.get().presence("room:team");
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].info == "ann");
    CHECK(listed[1].info == "bob");
    CHECK(listed[0].connection != listed[1].connection);
    CHECK(listed[0].server.empty());
    bob.send_text("presence");
    CHECK(bob.receive()->data == "members:ann:bob");

    ann.close();
    CHECK(bob.receive()->data == "left:ann");
    CHECK(bob.receive()->data == "presence:bob");
    REQUIRE(p.wait_for("open", 2));
    // ann's leave is done once bob has its notice; the list follows.
    CHECK(srv.get().presence("room:team").size() == 1);
    CHECK(srv.get().group_size("room:team") == 1);
    // Notices are not history: the group's offsets count messages only.
    CHECK(srv.get().history("room:team").position.offset == 0);
}

namespace {

boost::json::object greeting(std::string const& name)
{
    return {{"type", "hello"}, {"name", name}, {"n", 1}};
}

/// Greets with send_json, and publishes what it receives with publish_json.
class json_view : public mallard::websocket_view {
public:
    mallard::task<> on_open() override
    {
        join("json");
        co_await mallard::send_json(*this, greeting("ada"));
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode) override
    {
        mallard::publish_json(*this, "json", boost::json::parse(data));
        co_return;
    }
};

} // namespace

TEST_CASE("send_json and publish_json send JSON values as text", "[json]")
{
    test::log_capture log;
    test::running_server srv(test::test_options(log),
                             mallard::router{mallard::path(
                                 "/json", [] { return std::make_unique<json_view>(); }, "json")});
    mallard::testing::client a{srv.port(), "/json"}, b{srv.port(), "/json"};
    auto const hello = a.receive();
    REQUIRE(hello);
    CHECK(hello->op == mallard::opcode::text);
    CHECK(boost::json::parse(hello->data) == boost::json::value(greeting("ada")));
    CHECK(b.receive()->data == hello->data);
    a.send_text(R"({"x":[1,2]})");
    CHECK(a.receive()->data == R"({"x":[1,2]})");
    CHECK(b.receive()->data == R"({"x":[1,2]})");
    mallard::publish_json(srv.get(), "json", greeting("grace"));
    CHECK(boost::json::parse(a.receive()->data).at("name") == "grace");
}
