// SPDX-License-Identifier: BSL-1.0
// A connection's life on a real server: open, messages, every way it can
// end, limits and timeouts, HTTP refusals, parameters, and setup errors.

#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/socket.h>
#include <netinet/in.h>

#include <atomic>
#include <cstdlib>
#include <new>

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using mallard::close_code;
using test::probe;

// The largest single allocation, to show that a frame header declaring 1 GiB
// is refused before its payload is buffered. Sanitizers replace operator new
// themselves, so there the test checks the close code alone.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define MALLARD_TEST_COUNTS_ALLOCATIONS 1
namespace {
std::atomic<std::size_t> largest_allocation{0};
}
void* operator new(std::size_t size)
{
    auto seen = largest_allocation.load(std::memory_order_relaxed);
    while (size > seen && !largest_allocation.compare_exchange_weak(seen, size))
        ;
    if (void* p = std::malloc(size == 0 ? 1 : size))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

std::string code_text(close_code code) { return std::to_string(static_cast<unsigned>(code)); }

/// Records its life in a probe and reacts to commands in text messages.
class probe_view : public mallard::websocket_view {
public:
    explicit probe_view(probe& p) : probe_(p) {}

    mallard::task<> on_open() override
    {
        probe_.record("open");
        if (request().query_param("fail_open"))
            throw std::runtime_error("on_open failed on purpose");
        if (request().query_param("spawn"))
            spawn(ticker());
        if (auto room = request().path_params().find("room"); room != request().path_params().end())
            co_await send_text(room->second + "|" + request().query_param("name").value_or("-") +
                               "|" + request().path() + "|" +
                               std::to_string(request().path_param_int("n")));
        probe_.keep(connection());
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        if (data == "throw")
            throw std::runtime_error("on_receive failed on purpose");
        if (data == "close") {
            co_await send_text("last words");
            close(close_code{4001}, "done");
            co_return;
        }
        if (op == mallard::opcode::text)
            co_await send_text(data);
        else
            co_await send_binary(data);
    }

    mallard::task<> on_close(mallard::close_reason why) override
    {
        auto const late = co_await send_text("too late");
        probe_.record(std::string("late send ") +
                      (late == mallard::send_status::closed ? "closed" : "queued"));
        probe_.record("close:" + std::string(to_string(why.cause)) + ":" + code_text(why.code) +
                      (why.reason.empty() ? "" : ":" + why.reason));
    }

private:
    mallard::task<> ticker()
    {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
        try {
            for (;;) {
                timer.expires_after(5ms);
                co_await timer.async_wait(boost::asio::use_awaitable);
            }
        } catch (boost::system::system_error const&) {
            probe_.record("task cancelled");
            throw;
        }
    }

    probe& probe_;
};

mallard::router probe_routes(probe& p, mallard::route_options options = {})
{
    auto make = [&p] { return std::make_unique<probe_view>(p); };
    return mallard::router{
        mallard::path("/ws/probe", make, "probe", options),
        mallard::path("/ws/rooms/<room>/<int:n>", make, "rooms", options),
    };
}

/// Records "close:<cause>:<code>" when its connection ends; the base of the
/// send-limit tests' views.
struct close_recording_view : mallard::websocket_view {
    explicit close_recording_view(probe& pr) : p(pr) {}
    mallard::task<> on_close(mallard::close_reason why) override
    {
        p.record("close:" + std::string(to_string(why.cause)) + ":" +
                 std::to_string(static_cast<unsigned>(why.code)));
        co_return;
    }
    probe& p;
};

/// Pushes 32 MiB to its client as fast as its own queue allows.
struct pusher : mallard::websocket_view {
    static constexpr std::size_t max_send_queue_bytes = 1024 * 1024;
    static constexpr std::size_t send_queue_high_water = 256 * 1024;
    mallard::task<> on_open() override
    {
        std::string chunk(64 * 1024, 'z');
        for (int i = 0; i < 512; ++i) {
            chunk.replace(0, 8, std::to_string(10000000 + i));
            if (co_await send_binary(chunk) != mallard::send_status::queued)
                co_return;
        }
    }
};

} // namespace

TEST_CASE("A client close runs on_close once, with the client's code and reason", "[lifecycle]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));
    mallard::testing::client c{srv.port(), "/ws/probe"};
    c.send_text("hello");
    REQUIRE(c.receive()->data == "hello");
    c.close(close_code{4000}, "bye");
    CHECK(c.close_code() == close_code{4000});
    REQUIRE(p.wait_for("close:peer closed:4000:bye"));
    CHECK(p.count("late send closed") == 1);
    srv.stop();
    CHECK(p.count_prefix("close:") == 1);
    CHECK(p.count("open") == 1);
}

TEST_CASE("A TCP reset in the middle of a message runs on_close once as a network error",
          "[lifecycle]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));
    mallard::testing::client c{srv.port(), "/ws/probe"};
    REQUIRE(p.wait_for("open"));
    test::write_raw(c, test::frame_header(0x2, 1000) + std::string(10, 'x'));
    c.drop();
    REQUIRE(p.wait_for("close:network error:1006"));
    srv.stop();
    CHECK(p.count_prefix("close:") == 1);
}

TEST_CASE("A short receive_timeout closes an idle connection with 1001", "[lifecycle][limits]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log),
                             probe_routes(p, {.receive_timeout = 300ms}));
    mallard::testing::client c{srv.port(), "/ws/probe"};
    auto const start = std::chrono::steady_clock::now();
    c.send_text("activity");
    REQUIRE(c.receive()->data == "activity");
    CHECK(c.wait_for_close(10s) == close_code::going_away);
    auto const elapsed = std::chrono::steady_clock::now() - start;
    CHECK(c.close_text() == "receive timeout");
    CHECK(elapsed >= 300ms);
    REQUIRE(p.wait_for("close:receive timeout:1001:receive timeout"));
}

TEST_CASE("Frames sent in the same write as the upgrade request are read, small or large",
          "[lifecycle]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));
    std::string const close_1000 = test::frame_header(0x8, 2) + std::string("\x03\xe8", 2);
    SECTION("a message and a close")
    {
        test::raw_connection raw(srv.port());
        raw.write(test::upgrade_request("/ws/probe") + test::frame_header(0x1, 5) + "hello" +
                  close_1000);
        auto [reply, closed] = raw.read_until_closed();
        CHECK(reply.starts_with("HTTP/1.1 101"));
        auto const echo = reply.find(std::string("\x81\x05hello", 7));
        auto const close = reply.find(std::string("\x88\x02\x03\xe8", 4));
        CHECK(echo != std::string::npos);
        CHECK(close != std::string::npos);
        CHECK(echo < close);
        CHECK(closed);
        REQUIRE(p.wait_for_prefix("close:"));
        CHECK(*p.wait_for_prefix("close:") == "close:peer closed:1000");
    }
    SECTION("a 100 KB message")
    {
        test::raw_connection raw(srv.port());
        std::string const big(100'000, 'a');
        raw.write(test::upgrade_request("/ws/probe") + test::frame_header(0x1, big.size()) + big +
                  close_1000);
        auto [reply, closed] = raw.read_until_closed();
        CHECK(reply.starts_with("HTTP/1.1 101"));
        CHECK(reply.find(big) != std::string::npos);
        CHECK(reply.find(std::string("\x88\x02\x03\xe8", 4)) != std::string::npos);
    }
}

TEST_CASE("A slow upload is not idle: every frame of a message counts as activity",
          "[lifecycle][limits]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log),
                             probe_routes(p, {.receive_timeout = 500ms}));
    mallard::testing::client c{srv.port(), "/ws/probe"};
    std::string const piece = "0123456789";
    std::string expected;
    // Twelve fragments 150 ms apart: 1.8 s in all, over three receive
    // timeouts, but never 500 ms without a byte from the client. (The pauses
    // are the slow client under test, not a wait for the server.)
    for (int i = 0; i < 12; ++i) {
        c.send_raw(test::frame_header(i == 0 ? 0x1 : 0x0, piece.size(), false) + piece);
        expected += piece;
        std::this_thread::sleep_for(150ms);
    }
    c.send_raw(test::frame_header(0x0, piece.size(), true) + piece);
    expected += piece;
    auto const reply = c.receive(5s);
    REQUIRE(reply);
    CHECK(reply->data == expected);
    CHECK(p.count_prefix("close:") == 0);
}

TEST_CASE("Over the memory budget the largest holders pause, then close with 1013, others "
          "are served", "[lifecycle][limits]")
{
    probe p;
    test::log_capture log;
    auto options = test::test_options(log, 1);
    options.memory_budget = 1024 * 1024;
    options.memory_budget_timeout = 300ms;
    test::running_server srv(options, probe_routes(p));
    // Two peers each send three quarters of a 1 MiB frame and stop there:
    // 1.5 MiB held in all, over the budget.
    std::vector<std::unique_ptr<test::raw_connection>> holders;
    for (int i = 0; i < 2; ++i) {
        auto raw = std::make_unique<test::raw_connection>(srv.port());
        raw->write(test::upgrade_request("/ws/probe"));
        REQUIRE(raw->read_until("\r\n\r\n").starts_with("HTTP/1.1 101"));
        raw->write(test::frame_header(0x2, 1024 * 1024) + std::string(768 * 1024, 'x'));
        holders.push_back(std::move(raw));
    }
    REQUIRE(p.wait_for("close:memory budget:1013:memory budget", 1, 10s));
    // One of them covers the excess: the other one is left to read on.
    CHECK(p.count_prefix("close:") == 1);
    // A well-behaved client is served.
    mallard::testing::client c{srv.port(), "/ws/probe"};
    c.send_text("hello");
    auto const reply = c.receive(5s);
    REQUIRE(reply);
    CHECK(reply->data == "hello");
    // Once the closed one is gone, the other reads again, all it sent (the
    // budget looks ten times a second; stats are what there is to watch).
    auto settled = [&] {
        auto const now = srv.get().stats();
        return now.connections_paused == 0 && now.memory_held >= 768 * 1024;
    };
    auto const deadline = std::chrono::steady_clock::now() + 5s;
    while (!settled() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    auto const stats = srv.get().stats();
    CHECK(stats.connections_paused == 0);
    CHECK(stats.closes_by_code.at(1013) == 1);
    CHECK(stats.memory_held >= 768 * 1024); // the other peer's part of a message counts
}

TEST_CASE("A frame one byte over max_frame_size closes with 1009", "[lifecycle][limits]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p, {.max_frame_size = 1000}));
    mallard::testing::client c{srv.port(), "/ws/probe"};
    c.send_binary(std::string(1000, 'a'));
    REQUIRE(c.receive()->data.size() == 1000);
    c.send_binary(std::string(1001, 'a'));
    CHECK(c.wait_for_close() == close_code::message_too_big);
    REQUIRE(p.wait_for("close:message too big:1009"));
}

TEST_CASE("A frame header declaring 1 GiB closes at once with 1009, buffering nothing",
          "[lifecycle][limits]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));
    mallard::testing::client c{srv.port(), "/ws/probe"};
    REQUIRE(p.wait_for("open"));
#ifdef MALLARD_TEST_COUNTS_ALLOCATIONS
    largest_allocation = 0;
#endif
    test::write_raw(c, test::frame_header(0x2, std::uint64_t{1} << 30));
    CHECK(c.wait_for_close(5s) == close_code::message_too_big);
    REQUIRE(p.wait_for("close:message too big:1009"));
#ifdef MALLARD_TEST_COUNTS_ALLOCATIONS
    CHECK(largest_allocation.load() < 1024 * 1024);
#endif
}

TEST_CASE("An exception in on_receive closes with 1011, on_close runs, and the server serves on",
          "[lifecycle]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));
    {
        mallard::testing::client c{srv.port(), "/ws/probe"};
        c.send_text("throw");
        CHECK(c.wait_for_close() == close_code::internal_error);
        REQUIRE(p.wait_for("close:handler error:1011:internal error"));
        CHECK(log.contains("on_receive threw: on_receive failed on purpose"));
    }
    mallard::testing::client next{srv.port(), "/ws/probe"};
    next.send_text("still here");
    CHECK(next.receive()->data == "still here");
}

TEST_CASE("An exception in on_open closes with 1011 and on_close still runs", "[lifecycle]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));
    mallard::testing::client c{srv.port(), "/ws/probe?fail_open=1"};
    CHECK(c.wait_for_close() == close_code::internal_error);
    REQUIRE(p.wait_for("close:handler error:1011:internal error"));
    CHECK(log.contains("on_open threw: on_open failed on purpose"));
}

TEST_CASE("close() from a view sends what is queued, then the close frame", "[lifecycle]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));
    mallard::testing::client c{srv.port(), "/ws/probe"};
    c.send_text("close");
    auto last = c.receive();
    REQUIRE(last);
    CHECK(last->data == "last words");
    CHECK(c.wait_for_close() == close_code{4001});
    CHECK(c.close_text() == "done");
    REQUIRE(p.wait_for("close:server closed:4001:done"));
}

TEST_CASE("Stopping the server closes every client with 1001 and runs every on_close",
          "[lifecycle][shutdown]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));
    std::vector<std::unique_ptr<mallard::testing::client>> clients;
    for (int i = 0; i < 3; ++i)
        clients.push_back(std::make_unique<mallard::testing::client>(srv.port(), "/ws/probe"));
    REQUIRE(p.wait_for("open", 3));
    std::thread stopper([&] { srv.stop(); });
    for (auto& c : clients) {
        CHECK(c->wait_for_close() == close_code::going_away);
        CHECK(c->close_text() == "server shutdown");
    }
    stopper.join();
    CHECK(p.count("close:shutdown:1001:server shutdown") == 3);
}

TEST_CASE("drain closes every client with the drain code over the window, refusing upgrades "
          "meanwhile", "[lifecycle][shutdown][drain]")
{
    probe p;
    test::log_capture log;
    auto options = test::test_options(log);
    options.drain_close_code = close_code::service_restart;
    test::running_server srv(options, probe_routes(p));
    std::vector<std::unique_ptr<mallard::testing::client>> clients;
    for (int i = 0; i < 4; ++i)
        clients.push_back(std::make_unique<mallard::testing::client>(srv.port(), "/ws/probe"));
    REQUIRE(p.wait_for("open", 4));
    CHECK_THROWS_WITH(srv.get().drain(std::chrono::milliseconds{-1}),
                      Catch::Contains("must not be negative"));
    srv.get().drain(std::chrono::milliseconds{600});
    CHECK(srv.get().metrics().draining);
    // The drain was queued on every thread before this upgrade reached one.
    try {
        mallard::testing::client late{srv.port(), "/ws/probe"};
        FAIL("an upgrade during the drain was accepted");
    } catch (mallard::testing::upgrade_refused const& e) {
        CHECK(e.status() == 503);
    }
    for (auto& c : clients) {
        CHECK(c->wait_for_close() == close_code::service_restart);
        CHECK(c->close_text() == "service restart");
    }
    srv.stop(); // waits for run(), which returns once the window is over
    CHECK(p.count("close:shutdown:1012:service restart") == 4);
}

TEST_CASE("A client that ignores the shutdown is cut after the grace period", "[shutdown]")
{
    probe p;
    test::log_capture log;
    auto options = test::test_options(log);
    options.shutdown_grace = 200ms;
    test::running_server srv(std::move(options), probe_routes(p));
    test::raw_connection raw(srv.port());
    raw.write(test::upgrade_request("/ws/probe"));
    REQUIRE(p.wait_for("open"));
    srv.stop(); // returns only once run() has: the raw client never answers the close
    CHECK(p.count("close:shutdown:1001:server shutdown") == 1);
}

TEST_CASE("A sent connection handle reports closed once its connection is gone", "[send]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));
    mallard::testing::client c{srv.port(), "/ws/probe"};
    c.send_text("x");
    REQUIRE(c.receive());
    auto handle = p.kept();
    CHECK(handle.is_open());
    CHECK(handle.send_text("from the test") == mallard::send_status::queued);
    CHECK(c.receive()->data == "from the test");
    c.close();
    REQUIRE(p.wait_for_prefix("close:"));
    CHECK_FALSE(handle.is_open());
    CHECK(handle.send_text("after close") == mallard::send_status::closed);
    CHECK(handle.send_binary("after close") == mallard::send_status::closed);
    CHECK(p.count("late send closed") == 1);
}

TEST_CASE("A spawned task is cancelled and finished before on_close runs", "[lifecycle][spawn]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));
    mallard::testing::client c{srv.port(), "/ws/probe?spawn=1"};
    REQUIRE(p.wait_for("open"));
    c.drop();
    REQUIRE(p.wait_for("task cancelled", 1, 5s));
    auto const closed = p.wait_for_prefix("close:");
    REQUIRE(closed);
    CHECK(p.index_of("task cancelled") < p.index_of(*closed));
}

TEST_CASE("Unknown paths answer 404 and plain HTTP to a WebSocket path answers 426", "[http]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));

    SECTION("an upgrade to an unknown path")
    {
        try {
            mallard::testing::client c{srv.port(), "/ws/nothing-here"};
            FAIL("the upgrade was accepted");
        } catch (mallard::testing::upgrade_refused const& e) {
            CHECK(e.status() == 404);
        }
    }
    SECTION("an integer parameter that is not an integer")
    {
        test::raw_connection raw(srv.port());
        CHECK(raw.http_status(test::upgrade_request("/ws/rooms/lobby/seven")) == 404);
    }
    SECTION("a plain GET to a WebSocket path")
    {
        test::raw_connection raw(srv.port());
        raw.write("GET /ws/probe HTTP/1.1\r\nHost: x\r\n\r\n");
        auto [reply, closed] = raw.read_until_closed();
        CHECK(reply.starts_with("HTTP/1.1 426"));
        CHECK(reply.find("Upgrade: websocket") != std::string::npos);
        CHECK(closed);
    }
    SECTION("request headers over max_request_bytes")
    {
        test::raw_connection raw(srv.port());
        CHECK(raw.http_status("GET /ws/probe HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') +
                              "\r\n\r\n") == 431);
    }
    SECTION("an upgrade that is not a GET")
    {
        test::raw_connection raw(srv.port());
        auto request = test::upgrade_request("/ws/probe");
        request.replace(0, 3, "POST");
        raw.write(request);
        auto [reply, closed] = raw.read_until_closed();
        CHECK(reply.starts_with("HTTP/1.1 405"));
        CHECK(reply.find("Allow: GET") != std::string::npos);
    }
    SECTION("a WebSocket version other than 13")
    {
        test::raw_connection raw(srv.port());
        auto request = test::upgrade_request("/ws/probe");
        request.replace(request.find("Version: 13"), 11, "Version: 12");
        raw.write(request);
        auto [reply, closed] = raw.read_until_closed();
        CHECK(reply.starts_with("HTTP/1.1 426"));
        CHECK(reply.find("Sec-WebSocket-Version: 13") != std::string::npos);
    }
    SECTION("a missing Sec-WebSocket-Key")
    {
        test::raw_connection raw(srv.port());
        auto request = test::upgrade_request("/ws/probe");
        auto const key = request.find("Sec-WebSocket-Key");
        request.erase(key, request.find("\r\n", key) + 2 - key);
        CHECK(raw.http_status(request) == 400);
    }
    SECTION("a Sec-WebSocket-Key that is not base64 of 16 bytes, or two of them")
    {
        auto const good = std::string("dGhlIHNhbXBsZSBub25jZQ==");
        auto const with_key = [&](std::string const& header) {
            auto request = test::upgrade_request("/ws/probe");
            return request.replace(request.find("Sec-WebSocket-Key: " + good),
                                   19 + good.size(), header);
        };
        for (auto const* key : {"Sec-WebSocket-Key: !!!not-base64!!!",
                                "Sec-WebSocket-Key: ",
                                "Sec-WebSocket-Key: AAECAwQFBgc=", // 8 bytes
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}) {
            test::raw_connection raw(srv.port());
            INFO(key);
            CHECK(raw.http_status(with_key(key)) == 400);
        }
    }
    SECTION("an HTTP/1.1 request without Host, or with two")
    {
        {
            test::raw_connection raw(srv.port());
            auto request = test::upgrade_request("/ws/probe");
            request.erase(request.find("Host: 127.0.0.1\r\n"), 17);
            CHECK(raw.http_status(request) == 400);
        }
        {
            test::raw_connection raw(srv.port());
            CHECK(raw.http_status("GET /healthz HTTP/1.1\r\n\r\n") == 400);
        }
        {
            test::raw_connection raw(srv.port());
            CHECK(raw.http_status("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") ==
                  400);
        }
    }
    SECTION("garbage instead of HTTP")
    {
        test::raw_connection raw(srv.port());
        CHECK(raw.http_status("\x16\x03\x01 not http\r\n\r\n") == 400);
    }
    CHECK(p.count("open") == 0);
}

TEST_CASE("A route's origin allowlist answers 403 to other browser origins", "[http]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log),
                             probe_routes(p, {.allowed_origins = {"https://good.example"}}));
    auto with_origin = [](std::string origin) {
        auto request = test::upgrade_request("/ws/probe");
        return request.insert(request.size() - 2, "Origin: " + origin + "\r\n");
    };
    {
        test::raw_connection raw(srv.port());
        CHECK(raw.http_status(with_origin("https://evil.example")) == 403);
    }
    {
        test::raw_connection raw(srv.port());
        raw.write(with_origin("https://good.example"));
        CHECK(p.wait_for("open"));
    }
    mallard::testing::client no_origin{srv.port(), "/ws/probe"}; // not a browser: allowed
    CHECK(p.wait_for("open", 2));
}

TEST_CASE("A client that sends nothing is cut off at the handshake timeout", "[http][limits]")
{
    probe p;
    test::log_capture log;
    auto options = test::test_options(log);
    options.handshake_timeout = 300ms;
    test::running_server srv(std::move(options), probe_routes(p));
    test::raw_connection raw(srv.port());
    raw.write("GET /ws/probe HTTP/1.1\r\n"); // and never the rest
    auto [reply, closed] = raw.read_until_closed(10s);
    CHECK(closed);
    CHECK(reply.empty());
}

TEST_CASE("Path and query parameters reach the view, percent-decoded", "[request]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), probe_routes(p));
    mallard::testing::client c{srv.port(), "/ws/rooms/the%20lobby/42?name=ann%20b&x=1"};
    auto greeting = c.receive();
    REQUIRE(greeting);
    CHECK(greeting->data == "the lobby|ann b|/ws/rooms/the lobby/42|42");
}

TEST_CASE("A view sending to its own slow client waits instead of overflowing", "[send]")
{
    // 32 MiB pushed through a 1 MiB queue: without the wait the queue would
    // pass its bound and the connection would close with 1008.
    test::log_capture log;
    test::running_server srv(test::test_options(log), mallard::router{mallard::path<pusher>("/p", "p")});
    mallard::testing::client c{srv.port(), "/p"};
    for (int i = 0; i < 512; ++i) {
        auto m = c.receive(10s);
        REQUIRE(m);
        REQUIRE(m->data.substr(0, 8) == std::to_string(10000000 + i));
        if (i < 64)
            std::this_thread::sleep_for(1ms); // a slow reader at first, not a synchronisation
    }
}

TEST_CASE("A client that stops reading is closed with 1008 when its queue passes the bound",
          "[send][limits]")
{
    probe p;
    struct flooder : close_recording_view {
        using close_recording_view::close_recording_view;
        mallard::task<> on_open() override
        {
            // Through the connection handle: no waiting, as a broadcast would send.
            auto self = connection();
            std::string chunk(16 * 1024, 'f');
            for (int i = 0; i < 4096 && self.send_binary(chunk) == mallard::send_status::queued; ++i)
                ;
            co_return;
        }
    };
    test::log_capture log;
    test::running_server srv(
        test::test_options(log),
        mallard::router{mallard::path("/f", [&p] { return std::make_unique<flooder>(p); }, "f",
                                      {.max_send_queue_bytes = 256 * 1024,
                                       .send_queue_high_water = 128 * 1024})});
    test::raw_connection raw(srv.port()); // never reads until the end
    raw.write(test::upgrade_request("/f"));
    REQUIRE(p.wait_for("close:slow consumer:1008"));
}

TEST_CASE("A client that never reads is closed at the send timeout, its view blocked sending",
          "[send][limits]")
{
    probe p;
    // Answers a message with 32 MiB, more than the kernel's socket buffers
    // hold, waiting in its own send_binary at the high-water mark.
    struct echoer : close_recording_view {
        using close_recording_view::close_recording_view;
        mallard::task<> on_receive(std::string_view, mallard::opcode) override
        {
            std::string const reply(64 * 1024, 'e');
            for (int i = 0; i < 512; ++i)
                if (co_await send_binary(reply) != mallard::send_status::queued)
                    co_return;
        }
    };
    test::log_capture log;
    // The queue's bound is far away: only the send timeout can end this.
    test::running_server srv(
        test::test_options(log),
        mallard::router{mallard::path("/e", [&p] { return std::make_unique<echoer>(p); }, "e",
                                      {.receive_timeout = 60s,
                                       .max_send_queue_bytes = 64 * 1024 * 1024,
                                       .send_queue_high_water = 1024 * 1024,
                                       .send_timeout = 300ms})});
    test::raw_connection raw(srv.port()); // never reads
    raw.write(test::upgrade_request("/e"));
    REQUIRE(raw.read_until("\r\n\r\n").starts_with("HTTP/1.1 101"));
    raw.write(test::frame_header(0x1, 2) + "go");
    REQUIRE(p.wait_for("close:send timeout:1008", 1, 20s));
}

TEST_CASE("Keep-alive pings reach the client, and its pongs keep the connection open",
          "[limits]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log),
                             probe_routes(p, {.receive_timeout = 200ms, .ping_interval = 50ms}));
    mallard::testing::client c{srv.port(), "/ws/probe"};
    int pings = 0;
    c.on_ping([&](std::string_view) { ++pings; });
    // No message comes: the read answers pings until its deadline passes,
    // three times the receive timeout.
    CHECK_THROWS_WITH(c.receive(600ms), Contains("nothing arrived"));
    CHECK(pings >= 3);
    for (auto const& event : p.events())
        CHECK_FALSE(event.starts_with("close:")); // the pongs kept it open
    c.drop();
    auto const closed = p.wait_for_prefix("close:");
    REQUIRE(closed);
    CHECK(*closed == "close:network error:1006"); // ended by the client, not by the timeout
}

namespace {

/// SO_SNDBUF of this process's connected sockets whose local port is
/// `port`: the server's ends of its connections.
std::vector<int> send_buffers_of_connections_on(unsigned short port)
{
    std::vector<int> sizes;
    for (int fd = 3; fd < 4096; ++fd) {
        sockaddr_storage local{}, peer{};
        socklen_t local_size = sizeof local, peer_size = sizeof peer;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 ||
            local.ss_family != AF_INET ||
            ntohs(reinterpret_cast<sockaddr_in const&>(local).sin_port) != port ||
            ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0)
            continue;
        int size = 0;
        socklen_t size_size = sizeof size;
        if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &size_size) == 0)
            sizes.push_back(size);
    }
    return sizes;
}

} // namespace

TEST_CASE("socket_send_buffer sets the kernel's send buffer of the route's connections",
          "[limits]")
{
    constexpr std::size_t asked = 6000; // not a size the system picks by itself
    for (bool set : {true, false}) {
        CAPTURE(set);
        probe p;
        test::log_capture log;
        test::running_server srv(
            test::test_options(log),
            probe_routes(p, set ? mallard::route_options{.socket_send_buffer = asked}
                                : mallard::route_options{}));
        mallard::testing::client c{srv.port(), "/ws/probe"};
        REQUIRE(p.wait_for("open"));
        auto const sizes = send_buffers_of_connections_on(srv.port());
        REQUIRE(sizes.size() == 1);
        if (set) // Linux doubles what it is asked for its own bookkeeping
            CHECK(sizes[0] == static_cast<int>(2 * asked));
        else
            CHECK(sizes[0] != static_cast<int>(2 * asked));
    }
}

TEST_CASE("A client that leaves a ping unanswered for pong_timeout is closed, one that answers "
          "is not",
          "[limits][pong]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log),
                             probe_routes(p, {.receive_timeout = 30s,
                                              .ping_interval = 100ms,
                                              .pong_timeout = 300ms}));
    // This one upgrades, then reads nothing and answers nothing: a device
    // gone without a FIN, its socket still open here.
    test::raw_connection silent(srv.port());
    silent.write(test::upgrade_request("/ws/probe"));
    REQUIRE(silent.read_until("\r\n\r\n").starts_with("HTTP/1.1 101"));
    auto const started = std::chrono::steady_clock::now();
    auto const closed = p.wait_for_prefix("close:", 5s);
    auto const took = std::chrono::steady_clock::now() - started;
    REQUIRE(closed);
    CHECK(*closed == "close:pong timeout:1001:pong timeout");
    // The first ping at 100 ms, its deadline 300 ms later, as long again for
    // the close frame: well within 2 s even on a loaded machine.
    CHECK(took >= 350ms);
    CHECK(took < 2s);

    // This one answers every ping (its reads do): open after ten intervals.
    mallard::testing::client answering{srv.port(), "/ws/probe"};
    CHECK_THROWS_WITH(answering.receive(1s), Contains("nothing arrived"));
    CHECK(answering.is_open());
    auto const events = p.events();
    CHECK(std::count_if(events.begin(), events.end(),
                        [](auto const& e) { return e.starts_with("close:"); }) == 1);
    answering.close();
}

TEST_CASE("Server setup errors throw with a message that says what to fix", "[setup]")
{
    probe p;
    test::log_capture log;
    SECTION("a port in use")
    {
        test::running_server first(test::test_options(log), probe_routes(p));
        auto options = test::test_options(log);
        options.port = first.port();
        CHECK_THROWS_WITH((mallard::server{options, probe_routes(p)}),
                          Contains("cannot listen on 127.0.0.1:") &&
                              Contains("is another process using the port?"));
    }
    SECTION("an address that is not an IP address")
    {
        auto options = test::test_options(log);
        options.address = "localhost:80";
        CHECK_THROWS_WITH((mallard::server{options, probe_routes(p)}),
                          Contains("address \"localhost:80\" is not an IPv4 or IPv6 address"));
    }
    SECTION("a router without routes")
    {
        CHECK_THROWS_WITH((mallard::server{test::test_options(log), mallard::router{}}),
                          Contains("the router has no routes"));
    }
    SECTION("running twice")
    {
        mallard::server srv{test::test_options(log), probe_routes(p)};
        srv.stop();
        srv.run(); // returns at once: stopped before it ran
        CHECK_THROWS_WITH(srv.run(), Contains("a server runs once"));
    }
}
