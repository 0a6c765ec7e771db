// SPDX-License-Identifier: BSL-1.0
// Sans-I/O units: no sockets, no event loop.

#include <mallard/close_reason.hpp>
#include <mallard/detail/deflate/offer.hpp>
#include <mallard/detail/deflate/frame_inflater.hpp>
#include <mallard/detail/log_throttle.hpp>
#include <mallard/detail/redis/envelope.hpp>
#include <mallard/detail/route_pattern.hpp>
#include <mallard/detail/send_queue.hpp>
#include <mallard/detail/utf8.hpp>
#include <mallard/options.hpp>
#include <mallard/redis_options.hpp>
#include <mallard/router.hpp>
#include <mallard/websocket_view.hpp>

#include <catch2/catch.hpp>

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

using Catch::Matchers::Contains;
using mallard::detail::outbound_message;
using mallard::detail::send_queue;

namespace {

struct plain_view : mallard::websocket_view {};

struct tuned_view : mallard::websocket_view {
    static constexpr auto receive_timeout = std::chrono::seconds{30};
    static constexpr std::size_t max_frame_size = 64 * 1024;
    static constexpr auto ping_interval = std::chrono::milliseconds{2500};
};

outbound_message text(std::size_t size)
{
    return {outbound_message::kind::text, std::string(size, 'x'), {}};
}

outbound_message text(std::string s)
{
    return {outbound_message::kind::text, std::move(s), {}};
}

std::vector<std::string> split(std::string const& path)
{
    std::vector<std::string> out;
    std::size_t start = 1;
    while (start <= path.size()) {
        auto end = path.find('/', start);
        if (end == std::string::npos)
            end = path.size();
        out.push_back(path.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

} // namespace

TEST_CASE("Patterns match literal, string and integer segments", "[router]")
{
    mallard::router urls{
        mallard::path<plain_view>("/ws/echo", "echo"),
        mallard::path<plain_view>("/ws/chat/<room>", "chat"),
        mallard::path<plain_view>("/items/<int:id>/<str:part>", "item"),
        mallard::path<plain_view>("/", "root"),
    };
    mallard::path_params params;

    SECTION("a literal path")
    {
        auto const* r = urls.match(split("/ws/echo"), params);
        REQUIRE(r != nullptr);
        CHECK(r->name() == "echo");
        CHECK(params.empty());
    }
    SECTION("a string parameter")
    {
        auto const* r = urls.match(split("/ws/chat/lobby"), params);
        REQUIRE(r != nullptr);
        CHECK(r->name() == "chat");
        CHECK(params.at("room") == "lobby");
    }
    SECTION("an integer parameter accepts digits and a sign only")
    {
        REQUIRE(urls.match(split("/items/-42/head"), params) != nullptr);
        CHECK(params.at("id") == "-42");
        CHECK(params.at("part") == "head");
        CHECK(urls.match(split("/items/4x2/head"), params) == nullptr);
        CHECK(urls.match(split("/items/99999999999999999999/head"), params) == nullptr);
    }
    SECTION("the root pattern matches only the root")
    {
        auto const* r = urls.match({}, params);
        REQUIRE(r != nullptr);
        CHECK(r->name() == "root");
    }
    SECTION("paths of another length, or a trailing slash, or an empty parameter do not match")
    {
        CHECK(urls.match(split("/ws/echo/"), params) == nullptr);
        CHECK(urls.match(split("/ws/chat/"), params) == nullptr);
        CHECK(urls.match(split("/ws/chat/a/b"), params) == nullptr);
        CHECK(urls.match(split("/ws"), params) == nullptr);
    }
}

TEST_CASE("reverse() fills in and percent-encodes parameters", "[router]")
{
    mallard::router urls{
        mallard::path<plain_view>("/ws/chat/<room>", "chat"),
        mallard::path<plain_view>("/items/<int:id>", "item"),
        mallard::path<plain_view>("/ws/echo", "echo"),
    };
    CHECK(urls.reverse("chat", {{"room", "lobby"}}) == "/ws/chat/lobby");
    CHECK(urls.reverse("chat", {{"room", "a b/c?"}}) == "/ws/chat/a%20b%2Fc%3F");
    CHECK(urls.reverse("item", {{"id", "17"}}) == "/items/17");
    CHECK(urls.reverse("echo") == "/ws/echo");

    CHECK_THROWS_WITH(urls.reverse("nope"), Contains("no route is named \"nope\""));
    CHECK_THROWS_WITH(urls.reverse("chat"), Contains("missing parameter \"room\""));
    CHECK_THROWS_WITH(urls.reverse("item", {{"id", "seven"}}),
                      Contains("\"id\" must be an integer"));
    CHECK_THROWS_WITH(urls.reverse("chat", {{"room", "x"}, {"rom", "y"}}),
                      Contains("has no parameter \"rom\""));
    CHECK_THROWS_WITH(urls.reverse("chat", {{"room", ""}}), Contains("must not be empty"));
}

TEST_CASE("Malformed patterns throw, naming the route and the fix", "[router][setup]")
{
    auto bad = [](char const* pattern) { return mallard::path<plain_view>(pattern, "r"); };
    CHECK_THROWS_WITH(bad("ws/echo"), Contains("route \"r\"") && Contains("must start with '/'"));
    CHECK_THROWS_WITH(bad(""), Contains("must start with '/'"));
    CHECK_THROWS_WITH(bad("/ws//echo"), Contains("empty segment"));
    CHECK_THROWS_WITH(bad("/ws/echo/"), Contains("trailing '/'"));
    CHECK_THROWS_WITH(bad("/ws/<room"), Contains("lacks its closing '>'"));
    CHECK_THROWS_WITH(bad("/ws/room-<id>"), Contains("must be a whole segment"));
    CHECK_THROWS_WITH(bad("/ws/<float:x>"), Contains("unknown parameter type \"float\""));
    CHECK_THROWS_WITH(bad("/ws/<1x>"), Contains("parameter name \"1x\""));
    CHECK_THROWS_WITH(bad("/ws/<a>/<a>"), Contains("\"a\" appears twice"));
    CHECK_THROWS_WITH(bad("/ws/<>"), Contains("parameter name \"\""));
}

namespace {
struct hooked_view : mallard::websocket_view {
    mallard::task<mallard::upgrade_decision> on_upgrade() override
    {
        co_return mallard::upgrade_decision::reject(mallard::http::status::forbidden);
    }
};
struct hooked_below_view : hooked_view {}; // inherits a hook
struct final_plain_view final : mallard::websocket_view {};
} // namespace

TEST_CASE("A route asks on_upgrade unless it knows the view keeps the default", "[router]")
{
    CHECK_FALSE(mallard::path<plain_view>("/a", "a").asks_on_upgrade());
    CHECK(mallard::path<hooked_view>("/b", "b").asks_on_upgrade());
    CHECK(mallard::path<hooked_below_view>("/c", "c").asks_on_upgrade());
    // A factory's pointer type may hide a class with a hook, unless it is final.
    CHECK(mallard::path("/d", [] { return std::make_unique<plain_view>(); }, "d")
              .asks_on_upgrade());
    CHECK_FALSE(mallard::path("/e", [] { return std::make_unique<final_plain_view>(); }, "e")
                    .asks_on_upgrade());
    CHECK(mallard::path("/f", []() -> std::unique_ptr<mallard::websocket_view> {
              return std::make_unique<hooked_view>();
          }, "f").asks_on_upgrade());
}

TEST_CASE("Duplicate route names and patterns throw", "[router][setup]")
{
    CHECK_THROWS_WITH((mallard::router{mallard::path<plain_view>("/a", "same"),
                                       mallard::path<plain_view>("/b", "same")}),
                      Contains("route name \"same\" is used by both \"/a\" and \"/b\""));
    CHECK_THROWS_WITH((mallard::router{mallard::path<plain_view>("/chat/<room>", "one"),
                                       mallard::path<plain_view>("/chat/<name>", "two")}),
                      Contains("matches the same paths as \"/chat/<room>\""));
    // Same shape with different parameter types is allowed: the first match wins.
    CHECK_NOTHROW((mallard::router{mallard::path<plain_view>("/x/<int:id>", "by_id"),
                                   mallard::path<plain_view>("/x/<slug>", "by_slug")}));
}

TEST_CASE("Limits resolve route override over view member over library default", "[options]")
{
    SECTION("library defaults")
    {
        auto const limits = mallard::path<plain_view>("/a", "a").limits();
        CHECK(limits.receive_timeout == std::chrono::seconds{120});
        CHECK(limits.max_frame_size == 1024 * 1024);
        CHECK(limits.max_message_size == 1024 * 1024); // follows max_frame_size
        CHECK(limits.ping_interval.count() == 0);
        CHECK(limits.send_queue_high_water == limits.max_send_queue_bytes / 4);
        CHECK(limits.slow_consumer == mallard::slow_consumer_policy::close);
    }
    SECTION("the view's class-level members")
    {
        auto const limits = mallard::path<tuned_view>("/a", "a").limits();
        CHECK(limits.receive_timeout == std::chrono::seconds{30});
        CHECK(limits.max_frame_size == 64 * 1024);
        CHECK(limits.max_message_size == 64 * 1024);
        CHECK(limits.ping_interval == std::chrono::milliseconds{2500});
    }
    SECTION("a route's overrides")
    {
        auto const limits =
            mallard::path<tuned_view>("/a", "a",
                                      {.receive_timeout = std::chrono::milliseconds{250},
                                       .max_message_size = 1 << 20,
                                       .slow_consumer = mallard::slow_consumer_policy::keep_latest})
                .limits();
        CHECK(limits.receive_timeout == std::chrono::milliseconds{250});
        CHECK(limits.max_frame_size == 64 * 1024);
        CHECK(limits.max_message_size == 1 << 20);
        CHECK(limits.slow_consumer == mallard::slow_consumer_policy::keep_latest);
    }
    SECTION("a factory route reads the options of the view type it returns")
    {
        auto r = mallard::path("/t", [] { return std::make_unique<tuned_view>(); }, "t");
        CHECK(r.limits().max_frame_size == 64 * 1024);
        CHECK(r.make_view() != nullptr);
    }
}

TEST_CASE("Invalid limits throw at registration, naming the route and the option", "[options][setup]")
{
    CHECK_THROWS_WITH(mallard::path<plain_view>("/a", "a", {.max_frame_size = 0}),
                      Contains("mallard::path(\"/a\", \"a\")") &&
                          Contains("max_frame_size must be at least 1 byte"));
    CHECK_THROWS_WITH(
        mallard::path<plain_view>("/a", "a", {.max_frame_size = 100, .max_message_size = 10}),
        Contains("max_message_size must be at least max_frame_size"));
    CHECK_THROWS_WITH(
        mallard::path<plain_view>("/a", "a", {.receive_timeout = std::chrono::milliseconds{-1}}),
        Contains("receive_timeout must not be negative"));
    CHECK_THROWS_WITH(mallard::path<plain_view>("/a", "a", {.max_send_queue_bytes = 0}),
                      Contains("max_send_queue_bytes must be at least 1 byte"));
    CHECK_THROWS_WITH(mallard::path<plain_view>(
                          "/a", "a", {.max_send_queue_bytes = 10, .send_queue_high_water = 11}),
                      Contains("send_queue_high_water must not exceed max_send_queue_bytes"));
    CHECK_THROWS_WITH(
        mallard::path<plain_view>("/a", "a", {.pong_timeout = std::chrono::seconds{5}}),
        Contains("pong_timeout needs pings to time: set ping_interval"));
    CHECK_THROWS_WITH(mallard::path<plain_view>("/a", "a",
                                                {.ping_interval = std::chrono::seconds{5},
                                                 .pong_timeout = std::chrono::milliseconds{-1}}),
                      Contains("pong_timeout must not be negative"));
    auto const ok = mallard::path<plain_view>(
        "/a", "a", {.ping_interval = std::chrono::seconds{5}, .pong_timeout = std::chrono::seconds{3}});
    CHECK(ok.limits().pong_timeout == std::chrono::seconds{3});
    CHECK_THROWS_WITH(mallard::path<plain_view>("/a", "a", {.socket_send_buffer = std::size_t{1} << 31}),
                      Contains("socket_send_buffer is too large for the kernel"));
    CHECK(mallard::path<plain_view>("/a", "a", {}).limits().socket_send_buffer == 0);
    CHECK(mallard::path<plain_view>("/a", "a", {.socket_send_buffer = 8192}).limits().socket_send_buffer ==
          8192);
}

TEST_CASE("Invalid server options throw, naming the field", "[options][setup]")
{
    CHECK_THROWS_WITH(mallard::detail::check_server_options({.threads = 0}),
                      Contains("threads must be at least 1"));
    CHECK_THROWS_WITH(
        mallard::detail::check_server_options({.handshake_timeout = std::chrono::milliseconds{0}}),
        Contains("handshake_timeout must be positive"));
    CHECK_THROWS_WITH(mallard::detail::check_server_options({.max_request_bytes = 10}),
                      Contains("max_request_bytes must be at least 256"));
    CHECK_NOTHROW(mallard::detail::check_server_options({}));
}

TEST_CASE("The send queue counts bytes and keeps order", "[send_queue]")
{
    send_queue q(100, mallard::slow_consumer_policy::close);
    REQUIRE(q.push(text("one")) == send_queue::push_result::queued);
    REQUIRE(q.push(text("two")) == send_queue::push_result::queued);
    CHECK(q.bytes() == 6);
    CHECK(q.has_waiting());
    CHECK(q.begin_write().bytes() == "one");
    CHECK(q.has_waiting()); // "two" still waits
    q.end_write();
    CHECK(q.bytes() == 3);
    CHECK(q.begin_write().bytes() == "two");
    q.end_write();
    CHECK(q.bytes() == 0);
    CHECK_FALSE(q.has_waiting());
}

TEST_CASE("Policy close: passing the bound reports overflow and queues nothing", "[send_queue]")
{
    send_queue q(100, mallard::slow_consumer_policy::close);
    REQUIRE(q.push(text(60)) == send_queue::push_result::queued);
    REQUIRE(q.push(text(40)) == send_queue::push_result::queued); // exactly at the bound
    CHECK(q.push(text(1)) == send_queue::push_result::overflow);
    CHECK(q.bytes() == 100);
    CHECK(q.size() == 2);
}

TEST_CASE("A message larger than the bound still fits an empty queue", "[send_queue]")
{
    for (auto policy : {mallard::slow_consumer_policy::close,
                        mallard::slow_consumer_policy::drop_oldest,
                        mallard::slow_consumer_policy::keep_latest}) {
        send_queue q(100, policy);
        CHECK(q.push(text(1000)) == send_queue::push_result::queued);
        CHECK(q.bytes() == 1000);
    }
}

TEST_CASE("Policy drop_oldest drops waiting messages, never the one in flight", "[send_queue]")
{
    send_queue q(10, mallard::slow_consumer_policy::drop_oldest);
    REQUIRE(q.push(text("aaaa")) == send_queue::push_result::queued);
    CHECK(q.begin_write().bytes() == "aaaa"); // in flight
    REQUIRE(q.push(text("bbbb")) == send_queue::push_result::queued);
    REQUIRE(q.push(text("cccc")) == send_queue::push_result::queued); // drops "bbbb"
    CHECK(q.dropped() == 1);
    CHECK(q.bytes() == 8);
    q.end_write();
    CHECK(q.begin_write().bytes() == "cccc");
    q.end_write();
    CHECK(q.bytes() == 0);
}

TEST_CASE("Policy keep_latest keeps only the newest waiting message", "[send_queue]")
{
    send_queue q(1000, mallard::slow_consumer_policy::keep_latest);
    REQUIRE(q.push(text("1")) == send_queue::push_result::queued);
    (void)q.begin_write();
    for (auto s : {"2", "3", "4"})
        REQUIRE(q.push(text(s)) == send_queue::push_result::queued);
    CHECK(q.size() == 2);
    CHECK(q.dropped() == 2);
    q.end_write();
    CHECK(q.begin_write().bytes() == "4");
}

TEST_CASE("Pings are never dropped by a policy", "[send_queue]")
{
    send_queue q(4, mallard::slow_consumer_policy::keep_latest);
    REQUIRE(q.push({outbound_message::kind::ping, "p", {}}) == send_queue::push_result::queued);
    REQUIRE(q.push(text("a")) == send_queue::push_result::queued);
    REQUIRE(q.push(text("b")) == send_queue::push_result::queued);
    CHECK(q.begin_write().type == outbound_message::kind::ping);
    q.end_write();
    CHECK(q.begin_write().bytes() == "b");
}

TEST_CASE("clear_waiting keeps the message in flight", "[send_queue]")
{
    send_queue q(100, mallard::slow_consumer_policy::close);
    REQUIRE(q.push(text("x")) == send_queue::push_result::queued);
    REQUIRE(q.push(text("yy")) == send_queue::push_result::queued);
    (void)q.begin_write();
    q.clear_waiting();
    CHECK(q.size() == 1);
    CHECK(q.bytes() == 1);
    CHECK_FALSE(q.has_waiting());
}

TEST_CASE("departed() counts messages taken, dropped or cleared, in order", "[send_queue]")
{
    send_queue q(10, mallard::slow_consumer_policy::drop_oldest);
    CHECK(q.queued() == 0);
    CHECK(q.departed() == 0);
    REQUIRE(q.push(text("aaaa")) == send_queue::push_result::queued);
    REQUIRE(q.push(text("bbbb")) == send_queue::push_result::queued);
    CHECK(q.queued() == 2);
    CHECK(q.departed() == 0);
    (void)q.begin_write(); // "aaaa" taken: in flight still counts as departed
    CHECK(q.departed() == 1);
    REQUIRE(q.push(text("cccc")) == send_queue::push_result::queued); // drops "bbbb"
    CHECK(q.queued() == 3);
    CHECK(q.departed() == 2);
    REQUIRE(q.push(text("d")) == send_queue::push_result::queued);
    q.clear_waiting();
    CHECK(q.departed() == q.queued());
    q.end_write();
    CHECK(q.departed() == 4);
}

TEST_CASE("Only RFC 6455 sendable close codes may be sent", "[close]")
{
    using mallard::close_code;
    for (auto code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 3000, 4999})
        CHECK(mallard::is_sendable(static_cast<close_code>(code)));
    for (auto code : {0, 999, 1004, 1005, 1006, 1010, 1014, 1015, 2999, 5000})
        CHECK_FALSE(mallard::is_sendable(static_cast<close_code>(code)));
}

TEST_CASE("A view that is not attached reports every send as closed", "[view]")
{
    plain_view view;
    CHECK_FALSE(view.is_open());
    CHECK(view.ping() == mallard::send_status::closed);
    CHECK_FALSE(view.connection().is_open());
    CHECK(view.connection().send_text("x") == mallard::send_status::closed);
    CHECK_THROWS_WITH(view.request(), Contains("available from on_upgrade on"));
    CHECK_THROWS_WITH(view.close(mallard::close_code::abnormal),
                      Contains("code 1006 may not be sent"));
}

TEST_CASE("A text message must not end inside a UTF-8 sequence", "[utf8]")
{
    using mallard::detail::utf8_tail_complete;
    CHECK(utf8_tail_complete(""));
    CHECK(utf8_tail_complete("plain ascii"));
    CHECK(utf8_tail_complete("caf\xc3\xa9"));
    CHECK(utf8_tail_complete("\xe2\x82\xac"));
    CHECK(utf8_tail_complete("\xf0\x9f\x98\x80"));
    CHECK_FALSE(utf8_tail_complete("\xce"));
    CHECK_FALSE(utf8_tail_complete("ab\xe2\x82"));
    CHECK_FALSE(utf8_tail_complete("\xf0\x9f\x98"));
    CHECK_FALSE(utf8_tail_complete("\xba"));
    CHECK_FALSE(utf8_tail_complete("a\xc3\xa9\xa9"));
}

TEST_CASE("A Redis URL gives host, port, database and credentials", "[redis]")
{
    using mallard::redis_options;
    auto const plain = redis_options::from_url("redis://10.0.0.5");
    CHECK(plain.host == "10.0.0.5");
    CHECK(plain.port == 6379);
    CHECK(plain.database == 0);
    CHECK(plain.password.empty());

    auto const full = redis_options::from_url("redis://chat:s%40cret@redis.internal:6380/3");
    CHECK(full.host == "redis.internal");
    CHECK(full.port == 6380);
    CHECK(full.database == 3);
    CHECK(full.username == "chat");
    CHECK(full.password == "s@cret");

    auto const password_only = redis_options::from_url("redis://:pw@[::1]:7000/");
    CHECK(password_only.host == "::1");
    CHECK(password_only.username.empty());
    CHECK(password_only.password == "pw");
}

TEST_CASE("A bad Redis URL is refused, naming its bad part", "[redis]")
{
    using mallard::redis_options;
    auto refused = [](char const* url) {
        try {
            (void)redis_options::from_url(url);
        } catch (std::invalid_argument const& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    CHECK_THAT(refused("http://127.0.0.1"), Contains("scheme"));
    CHECK_THAT(refused("rediss://127.0.0.1"), Contains("scheme"));
    CHECK_THAT(refused("redis://"), Contains("host"));
    CHECK_THAT(refused("redis://h:0"), Contains("port"));
    CHECK_THAT(refused("redis://h:65536"), Contains("port"));
    CHECK_THAT(refused("redis://h:1/db"), Contains("database"));
    CHECK_THAT(refused("redis://user@h"), Contains("password"));
    CHECK_THAT(refused("redis://h?timeout=1"), Contains("query"));
    CHECK_THAT(refused("not a url"), Contains("not a URL"));
}

TEST_CASE("Redis options that cannot work are refused, naming the field", "[redis][setup]")
{
    using namespace std::chrono_literals;
    mallard::redis_options options;
    CHECK_NOTHROW(mallard::detail::check_redis_options(options));
    CHECK(options.ping_interval == 1000ms);
    CHECK(options.ping_timeout == 3000ms);
    options.ping_interval = 0ms;
    CHECK_THROWS_WITH(mallard::detail::check_redis_options(options),
                      Contains("ping_interval must be positive"));
    options.ping_interval = 1000ms;
    options.ping_timeout = -1ms;
    CHECK_THROWS_WITH(mallard::detail::check_redis_options(options),
                      Contains("ping_timeout must be positive"));
}

TEST_CASE("A group message survives its Redis envelope byte for byte", "[redis]")
{
    using namespace mallard::detail;
    node_id const origin{'a', '\0', 'c', 'd', '\xff', 'f', 'g', 'h'};
    std::string const payload("\0\x01" "binary\xff", 9); // split: \x01b would be one escape
    auto const sealed = seal_envelope(origin, mallard::opcode::binary, payload);
    auto const opened = open_envelope(sealed);
    REQUIRE(opened);
    CHECK(opened->origin == origin);
    CHECK(opened->op == mallard::opcode::binary);
    CHECK(opened->payload == payload);

    auto const empty_text = open_envelope(seal_envelope(origin, mallard::opcode::text, ""));
    REQUIRE(empty_text);
    CHECK(empty_text->op == mallard::opcode::text);
    CHECK(empty_text->payload.empty());

    CHECK_FALSE(open_envelope("hello from someone else"));
    CHECK_FALSE(open_envelope(sealed.substr(0, envelope_header_size - 1)));
}

namespace {

/// What we hand Beast for these Sec-WebSocket-Extensions lines; "declined" for none.
std::string chosen_offer(std::vector<std::string> const& lines, bool* repeat_15 = nullptr)
{
    mallard::http::request<mallard::http::empty_body> upgrade;
    for (auto const& line : lines)
        upgrade.insert(mallard::http::field::sec_websocket_extensions, line);
    auto const chosen = mallard::detail::choose_deflate_offer(upgrade);
    if (repeat_15)
        *repeat_15 = chosen && chosen->repeat_server_window_15;
    return chosen ? chosen->offer : "declined";
}

} // namespace

TEST_CASE("The first permessage-deflate offer we can honour is chosen", "[deflate]")
{
    CHECK(chosen_offer({"permessage-deflate"}) == "permessage-deflate");
    CHECK(chosen_offer({"permessage-deflate \t;  client_max_window_bits ;\tclient_no_context_takeover"}) ==
          "permessage-deflate; client_max_window_bits; client_no_context_takeover");
    CHECK(chosen_offer({"permessage-deflate; server_max_window_bits=\"10\""}) ==
          "permessage-deflate; server_max_window_bits=10");
    // A valueless parameter before another element stays with its offer.
    CHECK(chosen_offer({"permessage-deflate; server_no_context_takeover, x-unknown"}) ==
          "permessage-deflate; server_no_context_takeover");
    CHECK(chosen_offer({"x-unknown; level=3, permessage-deflate; client_max_window_bits=10"}) ==
          "permessage-deflate; client_max_window_bits=10");
    CHECK(chosen_offer({"x-unknown", "permessage-deflate"}) == "permessage-deflate");
    CHECK(chosen_offer({"permessage-deflate; foo, permessage-deflate"}) == "permessage-deflate");
    bool repeat_15 = false;
    CHECK(chosen_offer({"permessage-deflate; server_max_window_bits=15"}, &repeat_15) ==
          "permessage-deflate; server_max_window_bits=15");
    CHECK(repeat_15);
}

TEST_CASE("permessage-deflate offers we must or cannot honour are declined", "[deflate]")
{
    for (auto const* offer : {"permessage-deflate; foo", "permessage-deflate; foo, x-unknown",
                              "permessage-deflate; server_max_window_bits",
                              "permessage-deflate; server_max_window_bits=7",
                              "permessage-deflate; server_max_window_bits=8",
                              "permessage-deflate; server_max_window_bits=08",
                              "permessage-deflate; client_max_window_bits=16",
                              "permessage-deflate; server_no_context_takeover=1",
                              "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
                              "permessage-deflate; server_max_window_bits=10; server_max_window_bits=12",
                              "permessage-deflate; client_max_window_bits=\"10",
                              "x-webkit-deflate-frame", ""}) {
        INFO(offer);
        CHECK(chosen_offer({offer}) == "declined");
    }
}

namespace {

using mallard::detail::frame_inflater;

std::string unhex(std::string_view hex)
{
    std::string bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        bytes += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
    return bytes;
}

// A client frame: first header byte `head` (FIN, RSV, opcode), masked.
std::string client_frame(unsigned char head, std::string const& payload)
{
    std::string frame(1, static_cast<char>(head));
    if (payload.size() < 126) {
        frame += static_cast<char>(0x80 | payload.size());
    } else {
        frame += static_cast<char>(0x80 | 126);
        frame += static_cast<char>(payload.size() >> 8);
        frame += static_cast<char>(payload.size() & 0xff);
    }
    char const key[4] = {0x12, 0x34, 0x56, 0x78};
    frame.append(key, 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        frame += static_cast<char>(payload[i] ^ key[i % 4]);
    return frame;
}

// What Beast reads: the input fed in pieces as the inflater takes them, and
// every output drained; past the point where parsing stops, the input as is.
std::string through(frame_inflater& inflater, std::string const& input,
                    std::size_t* largest_output = nullptr)
{
    std::string out;
    std::size_t at = 0;
    for (;;) {
        inflater.process();
        for (auto o = inflater.output(); o.size() > 0; o = inflater.output()) {
            if (largest_output)
                *largest_output = std::max(*largest_output, o.size());
            out.append(static_cast<char const*>(o.data()), o.size());
            inflater.consume_output(o.size());
            inflater.process();
        }
        if (at == input.size() || inflater.stopped())
            break;
        auto const space = inflater.input_space();
        auto const size = std::min(space.size(), input.size() - at);
        std::memcpy(space.data(), input.data() + at, size);
        inflater.commit_input(size);
        at += size;
    }
    if (inflater.stopped() && !inflater.error())
        out += input.substr(at);
    return out;
}

// An inflated message as it reaches Beast: one frame, then an empty FIN frame.
std::string beast_message(unsigned char opcode, std::string const& payload)
{
    std::string frames(1, static_cast<char>(opcode));
    frames += static_cast<char>(0x80 | payload.size());
    frames += std::string(4, '\0') + payload;
    return frames + std::string{'\x80', '\x80', '\0', '\0', '\0', '\0'};
}

} // namespace

TEST_CASE("A compressed message ending in a BFINAL block is inflated and its window kept",
          "[deflate]")
{
    // RFC 7692 sections 7.2.3.4 and 7.2.3.2: "Hello" in a final block, then
    // a message that only refers back to it.
    frame_inflater inflater;
    auto const input = client_frame(0xc1, unhex("f348cdc9c9070000")) +
                       client_frame(0xc1, unhex("f200110000"));
    CHECK(through(inflater, input) ==
          beast_message(0x01, "Hello") + beast_message(0x01, "Hello"));
    CHECK(!inflater.error());
}

TEST_CASE("Control frames and uncompressed messages pass byte for byte", "[deflate]")
{
    frame_inflater inflater;
    auto const compressed = unhex("f248cdc9c90700"); // "Hello"
    auto const input = client_frame(0x41, compressed.substr(0, 3)) + client_frame(0x89, "ping") +
                       client_frame(0x80, compressed.substr(3)) + client_frame(0x82, "plain");
    auto const out = through(inflater, input);
    auto const ping = client_frame(0x89, "ping");
    CHECK(out.find(ping) != std::string::npos);
    CHECK(out.ends_with(client_frame(0x82, "plain")));
    CHECK(!inflater.stopped());
}

TEST_CASE("A frame Beast must reject stops the parsing and passes on with the rest",
          "[deflate]")
{
    SECTION("RSV2")
    {
        frame_inflater inflater;
        auto const input = client_frame(0xa1, "x") + client_frame(0xc1, unhex("f248cdc9c90700"));
        CHECK(through(inflater, input) == input);
        CHECK(inflater.stopped());
    }
    SECTION("RSV1 on a continuation")
    {
        frame_inflater inflater;
        auto const compressed = unhex("f248cdc9c90700");
        auto const second = client_frame(0xc0, compressed.substr(3));
        auto const out =
            through(inflater, client_frame(0x41, compressed.substr(0, 3)) + second);
        CHECK(out.ends_with(second));
        CHECK(inflater.stopped());
        CHECK(!inflater.error());
    }
}

TEST_CASE("Compressed data that does not inflate fails with inflate_error", "[deflate]")
{
    frame_inflater inflater;
    (void)through(inflater, client_frame(0xc2, unhex("0600"))); // reserved block type
    CHECK(inflater.error() == mallard::detail::inflate_error::bad_data);
}

TEST_CASE("A message inflating to 4 MiB reaches Beast in bounded pieces", "[deflate]")
{
    std::string const original(4 << 20, 'a');
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string compressed(deflateBound(&z, static_cast<uLong>(original.size())) + 16, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(original.data()));
    z.avail_in = static_cast<uInt>(original.size());
    z.next_out = reinterpret_cast<Bytef*>(compressed.data());
    z.avail_out = static_cast<uInt>(compressed.size());
    REQUIRE(deflate(&z, Z_SYNC_FLUSH) == Z_OK);
    compressed.resize(compressed.size() - z.avail_out - 4); // without 00 00 ff ff
    deflateEnd(&z);
    REQUIRE(compressed.size() < 65536);

    frame_inflater inflater;
    std::size_t largest = 0;
    auto const out = through(inflater, client_frame(0xc2, compressed), &largest);
    CHECK(largest <= frame_inflater::buffer_bytes);
    // Unframe: every frame masked with a zero key, no FIN but on the last.
    std::string inflated;
    std::size_t at = 0;
    bool fin = false;
    while (at < out.size()) {
        fin = (out[at] & 0x80) != 0;
        std::size_t size = out[at + 1] & 0x7f;
        std::size_t header = 6;
        if (size == 126) {
            size = static_cast<unsigned char>(out[at + 2]) << 8 |
                   static_cast<unsigned char>(out[at + 3]);
            header = 8;
        }
        inflated += out.substr(at + header, size);
        at += header + size;
    }
    CHECK(fin);
    CHECK(inflated == original);
}

TEST_CASE("A throttled log line is written once per interval, with the count held back",
          "[log]")
{
    using namespace std::chrono_literals;
    mallard::detail::log_throttle throttle(1s);
    auto const t0 = mallard::detail::log_throttle::clock::time_point{} + 1h;
    CHECK(throttle.admit(t0) == 0u);
    CHECK_FALSE(throttle.admit(t0 + 100ms));
    CHECK_FALSE(throttle.admit(t0 + 999ms));
    CHECK(throttle.admit(t0 + 1s) == 2u);
    CHECK_FALSE(throttle.admit(t0 + 1500ms));
    CHECK(throttle.admit(t0 + 5s) == 1u);
    CHECK(throttle.admit(t0 + 7s) == 0u);
}
