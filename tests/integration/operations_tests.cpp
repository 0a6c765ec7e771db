// SPDX-License-Identifier: BSL-1.0
// What operators steer, on a real server: server::metrics() (per-route
// counts, handler exceptions by callback, upgrade refusals by status, a call
// from a server thread), the admission limits, the client's address behind a
// trusted proxy, and buffered_amount() against a client that stops reading.

#include "support.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <stdexcept>
#include <string>

namespace {

using test::probe;
using namespace std::chrono_literals;

/// Replies to every message with what server::metrics() says, read from
/// the connection's own thread: the count of messages in on its route.
class metrics_view : public mallard::websocket_view {
public:
    metrics_view(mallard::server* const& srv, probe& p) : server_(srv), probe_(p) {}

    mallard::task<> on_receive(std::string_view, mallard::opcode) override
    {
        auto const metrics = server_->metrics();
        co_await send_text(std::to_string(metrics.routes.at(0).messages_in));
    }

    mallard::task<> on_close(mallard::close_reason why) override
    {
        probe_.record("close:" + std::to_string(static_cast<unsigned>(why.code)));
        co_return;
    }

private:
    mallard::server* const& server_;
    probe& probe_;
};

/// "close:CODE:cause", as the views below record an ending.
std::string close_event(mallard::close_reason const& why)
{
    return "close:" + std::to_string(static_cast<unsigned>(why.code)) + ":" +
           std::string(mallard::to_string(why.cause));
}

/// Records how its connection ended, as close_event says.
class close_recording_view : public mallard::websocket_view {
public:
    explicit close_recording_view(probe& p) : probe_(p) {}

    mallard::task<> on_close(mallard::close_reason why) override
    {
        probe_.record(close_event(why));
        co_return;
    }

protected:
    probe& probe_;
};

/// Throws from the callback its query names; refuses with 401 when asked.
class failing_view : public close_recording_view {
public:
    using close_recording_view::close_recording_view;

    mallard::task<mallard::upgrade_decision> on_upgrade() override
    {
        if (request().query_param("refuse"))
            co_return mallard::upgrade_decision::reject(mallard::http::status::unauthorized,
                                                        "no\n");
        if (request().query_param("throw_upgrade"))
            throw std::runtime_error("on_upgrade fails on purpose");
        co_return mallard::upgrade_decision::accept();
    }
    mallard::task<> on_open() override
    {
        if (request().query_param("throw_open"))
            throw std::runtime_error("on_open fails on purpose");
        co_return;
    }
    mallard::task<> on_receive(std::string_view, mallard::opcode) override
    {
        throw std::runtime_error("on_receive fails on purpose");
        co_return;
    }
};

std::uint64_t close_count(mallard::route_metrics const& route, std::uint16_t code,
                          mallard::close_cause cause)
{
    for (auto const& c : route.closes)
        if (c.code == code && c.cause == cause)
            return c.count;
    return 0;
}

} // namespace

TEST_CASE("server::metrics counts per route and answers on a server thread", "[metrics]")
{
    probe p;
    test::log_capture log;
    mallard::server* srv_ptr = nullptr;
    test::running_server srv(
        test::test_options(log),
        mallard::router{
            mallard::path("/counted", [&] { return std::make_unique<metrics_view>(srv_ptr, p); },
                          "counted"),
            mallard::path<mallard::websocket_view>("/other/<n>", "")});
    srv_ptr = &srv.get();
    {
        mallard::testing::client c{srv.port(), "/counted"};
        for (int i = 1; i <= 3; ++i) {
            c.send_text("abc");
            // Called from the connection's thread; counted before on_receive ran.
            CHECK(c.receive()->data == std::to_string(i));
        }
        c.close(mallard::close_code::normal);
    }
    REQUIRE(p.wait_for("close:1000"));
    auto const metrics = srv.get().metrics();
    REQUIRE(metrics.routes.size() == 2);
    auto const& counted = metrics.routes[0];
    CHECK(counted.route == "counted");
    CHECK(counted.pattern == "/counted");
    CHECK(counted.connections_opened == 1);
    CHECK(counted.connections_open == 0);
    CHECK(counted.messages_in == 3);
    CHECK(counted.bytes_in == 9);
    CHECK(counted.messages_out == 3);
    CHECK(close_count(counted, 1000, mallard::close_cause::peer_closed) == 1);
    auto const& other = metrics.routes[1];
    CHECK(other.route == "/other/<n>"); // no name: the pattern
    CHECK(other.connections_opened == 0);
    CHECK(metrics.process.open_fds > 0);
}

TEST_CASE("Handler exceptions are counted by callback, refusals by status", "[metrics]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log),
                             mallard::router{mallard::path(
                                 "/fail", [&] { return std::make_unique<failing_view>(p); },
                                 "fail")});
    auto refused_with = [&](std::string const& target) -> unsigned {
        try {
            mallard::testing::client c{srv.port(), target};
        } catch (mallard::testing::upgrade_refused const& e) {
            return e.status();
        }
        return 101;
    };
    CHECK(refused_with("/fail?refuse=1") == 401);
    CHECK(refused_with("/fail?throw_upgrade=1") == 500);
    CHECK(refused_with("/nowhere") == 404);
    {
        mallard::testing::client c{srv.port(), "/fail?throw_open=1"};
        CHECK(c.wait_for_close() == mallard::close_code::internal_error);
    }
    {
        mallard::testing::client c{srv.port(), "/fail"};
        c.send_text("x");
        CHECK(c.wait_for_close() == mallard::close_code::internal_error);
    }
    REQUIRE(p.wait_for("close:1011:handler error", 2));
    auto const metrics = srv.get().metrics();
    auto const& fail = metrics.routes.at(0);
    using mallard::handler_callback;
    auto thrown = [&](handler_callback c) { return fail.exceptions[static_cast<std::size_t>(c)]; };
    CHECK(thrown(handler_callback::on_upgrade) == 1);
    CHECK(thrown(handler_callback::on_open) == 1);
    CHECK(thrown(handler_callback::on_receive) == 1);
    CHECK(thrown(handler_callback::on_close) == 0);
    CHECK(close_count(fail, 1011, mallard::close_cause::handler_error) == 2);
    CHECK(metrics.upgrades_refused.at(401) == 1);
    CHECK(metrics.upgrades_refused.at(500) == 1);
    CHECK(metrics.upgrades_refused.at(404) == 1);
    CHECK(fail.connections_opened == 2);
    CHECK(fail.connections_open == 0);
}

namespace {

/// Says who it is talking to, and keeps its connection handle for the test.
class address_view : public mallard::websocket_view {
public:
    explicit address_view(probe& p) : probe_(p) {}

    mallard::task<> on_open() override
    {
        probe_.keep(connection());
        co_await send_text(request().client_address().to_string() + " via " +
                           request().peer_address().to_string());
    }
    mallard::task<> on_receive(std::string_view data, mallard::opcode) override
    {
        // "flood N": N messages of 64 KiB to a client that may not read them.
        if (data.starts_with("flood ")) {
            auto const count = std::stoi(std::string(data.substr(6)));
            std::string const block(64 * 1024, 'x');
            for (int i = 0; i < count; ++i)
                (void)connection().send_text(block);
            probe_.record("flooded");
        }
        co_return;
    }
    mallard::task<> on_close(mallard::close_reason) override
    {
        probe_.record("close");
        co_return;
    }

private:
    probe& probe_;
};

mallard::router address_routes(probe& p)
{
    // A queue that holds more than the kernel's socket buffers can take.
    return mallard::router{mallard::path(
        "/who", [&p] { return std::make_unique<address_view>(p); }, "who",
        {.max_send_queue_bytes = std::size_t{64} << 20})};
}

} // namespace

TEST_CASE("max_connections answers 503 and the per-address limit 429, before any view",
          "[admission]")
{
    probe p;
    test::log_capture log;
    auto options = test::test_options(log);
    options.max_connections = 3;
    options.max_connections_per_address = 2;
    options.trusted_proxies = {"127.0.0.1"};
    test::running_server srv(options, address_routes(p));
    auto status_of = [&](std::string const& forwarded_for) {
        test::raw_connection raw(srv.port());
        return raw.http_status(
            test::upgrade_request("/who", "X-Forwarded-For: " + forwarded_for + "\r\n"), 2s);
    };
    // Two clients behind the proxy at 198.51.100.1, one at .2.
    auto const upgrade = [&](std::string const& client) {
        auto raw = std::make_unique<test::raw_connection>(srv.port());
        raw->write(test::upgrade_request("/who", "X-Forwarded-For: " + client + "\r\n"));
        auto const reply = raw->read_until(" via 127.0.0.1");
        REQUIRE(reply.starts_with("HTTP/1.1 101"));
        CHECK(reply.find(client + " via 127.0.0.1") != std::string::npos);
        return raw;
    };
    auto a1 = upgrade("198.51.100.1");
    auto a2 = upgrade("198.51.100.1");
    CHECK(status_of("198.51.100.1") == 429); // a third from one address
    auto b1 = upgrade("198.51.100.2");
    CHECK(status_of("198.51.100.3") == 503); // a fourth in all
    auto const metrics = srv.get().metrics();
    CHECK(metrics.refused_max_connections_per_address == 1);
    CHECK(metrics.refused_max_connections == 1);
    CHECK(metrics.upgrades_refused.at(429) == 1);
    CHECK(metrics.upgrades_refused.at(503) == 1);
    CHECK(metrics.routes.at(0).connections_opened == 3); // no view was made for the refused
    // A connection that ends gives its place back.
    a1.reset();
    REQUIRE(p.wait_for("close"));
    auto a3 = upgrade("198.51.100.1");
}

TEST_CASE("Forwarding headers from an untrusted peer are ignored", "[admission]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), address_routes(p));
    test::raw_connection raw(srv.port());
    raw.write(test::upgrade_request("/who", "X-Forwarded-For: 198.51.100.1\r\n"));
    auto const reply = raw.read_until(" via 127.0.0.1");
    CHECK(reply.find("127.0.0.1 via 127.0.0.1") != std::string::npos);
}

TEST_CASE("buffered_amount grows while a client does not read, from any thread", "[admission]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), address_routes(p));
    test::raw_connection raw(srv.port()); // never reads again after the greeting
    raw.write(test::upgrade_request("/who"));
    raw.read_until(" via 127.0.0.1");
    auto const handle = p.kept(); // kept before the greeting was sent
    REQUIRE(handle.is_open());
    CHECK(handle.buffered_amount() == 0);
    CHECK(handle.client_address().to_string() == "127.0.0.1");
    CHECK(handle.peer_address().to_string() == "127.0.0.1");
    // 16 MiB in 64 KiB messages: more than the sockets' buffers take (a few
    // MiB at most), less than the route's 64 MiB queue.
    raw.write(test::frame_header(0x1, 9) + "flood 256");
    REQUIRE(p.wait_for("flooded"));
    // Read here, on the test's thread: what the kernel did not take waits.
    auto const held = handle.buffered_amount();
    INFO("buffered: " << held);
    CHECK(held > std::size_t{1} << 20);
    CHECK(held <= std::size_t{16} << 20);
}

namespace {

/// Expires 1.5 s after opening, hears of it 1 s before; with ?extend=1 its
/// on_expiring moves the expiry 3 s on (as a fresh token would).
class expiring_view : public close_recording_view {
public:
    static constexpr auto expiry_notice = std::chrono::seconds{1};

    using close_recording_view::close_recording_view;

    mallard::task<mallard::upgrade_decision> on_upgrade() override
    {
        expire_at(std::chrono::system_clock::now() + 1500ms); // from on_upgrade, as a token's
        co_return mallard::upgrade_decision::accept();
    }
    mallard::task<> on_expiring() override
    {
        probe_.record("expiring");
        if (request().query_param("extend"))
            expire_at(std::chrono::system_clock::now() + 3s);
        co_return;
    }
};

} // namespace

TEST_CASE("max_lifetime closes with 3008 however busy the connection is", "[lifetime]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(
        test::test_options(log),
        mallard::router{mallard::path<mallard::websocket_view>(
            "/short", "short", {.max_lifetime = std::chrono::milliseconds{500}})});
    mallard::testing::client c{srv.port(), "/short"};
    auto const opened = std::chrono::steady_clock::now();
    CHECK(c.wait_for_close(5s) == mallard::close_code::lifetime_reached);
    CHECK(c.close_text() == "max lifetime");
    auto const lasted = std::chrono::steady_clock::now() - opened;
    CHECK(lasted >= 450ms); // the wheel's tick is 500 ms / 8 here
    CHECK(lasted < 3s);
}

TEST_CASE("expire_at closes with 3000 unless on_expiring extends it", "[lifetime]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log),
                             mallard::router{mallard::path(
                                 "/token", [&p] { return std::make_unique<expiring_view>(p); },
                                 "token")});
    SECTION("not extended")
    {
        mallard::testing::client c{srv.port(), "/token"};
        CHECK(c.wait_for_close(5s) == mallard::close_code::expired);
        CHECK(c.close_text() == "expired");
        REQUIRE(p.wait_for("close:3000:expired"));
        CHECK(p.count("expiring") == 1);
    }
    SECTION("extended")
    {
        mallard::testing::client c{srv.port(), "/token?extend=1"};
        // The second notice comes 2.5 s after the first: past the first
        // expiry (1.5 s), which would have closed it.
        REQUIRE(p.wait_for("expiring", 2, 6s));
        CHECK(p.count("close:3000:expired") == 0);
        c.close(mallard::close_code::normal);
        REQUIRE(p.wait_for_prefix("close:1000"));
    }
}

TEST_CASE("The admin port serves the metrics apart from the public port", "[admin]")
{
    probe p;
    test::log_capture log;
    auto options = test::test_options(log);
    options.metrics_path = "/metrics";
    options.admin_port = 0;
    test::running_server srv(options, address_routes(p));
    REQUIRE(srv.get().admin_port() != 0);
    CHECK(srv.get().admin_port() != srv.port());
    auto get = [](unsigned short port, char const* path) {
        test::raw_connection raw(port);
        return raw.http_status("GET " + std::string(path) +
                               " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    };
    CHECK(get(srv.get().admin_port(), "/metrics") == 200);
    CHECK(get(srv.get().admin_port(), "/readyz") == 200);
    CHECK(get(srv.port(), "/metrics") == 404);
    test::raw_connection upgrade(srv.get().admin_port());
    CHECK(upgrade.http_status(test::upgrade_request("/who")) == 404);
}

TEST_CASE("reuse_port lets two servers listen on one port", "[admin]")
{
    test::log_capture log;
    auto options = test::test_options(log);
    options.reuse_port = true;
    mallard::server first{options, mallard::router{mallard::path<mallard::websocket_view>("/a", "a")}};
    options.port = first.port();
    CHECK_NOTHROW(mallard::server{options,
                                  mallard::router{mallard::path<mallard::websocket_view>("/a", "a")}});
    options.reuse_port = false;
    CHECK_THROWS_AS((mallard::server{options,
                                     mallard::router{mallard::path<mallard::websocket_view>("/a", "a")}}),
                    std::system_error);
}

// --- server::spawn ------------------------------------------------------------

namespace {

/// Joins the "ticks" group and hears what the server's task publishes there.
class tick_view : public mallard::websocket_view {
public:
    mallard::task<> on_open() override
    {
        join("ticks");
        co_await send_text("joined");
    }
};

/// Publishes "tick N" to "ticks" every 10 ms until cancelled.
mallard::task<> ticker(mallard::server& srv, probe& p)
{
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    for (int n = 1;; ++n) {
        timer.expires_after(10ms);
        try {
            co_await timer.async_wait(boost::asio::use_awaitable);
        } catch (boost::system::system_error const& e) {
            p.record(std::string("ticker cancelled: ") +
                     (e.code() == boost::asio::error::operation_aborted ? "aborted" : "other"));
            throw;
        }
        srv.publish("ticks", "tick " + std::to_string(n));
    }
}

mallard::task<> failing_task(probe& p)
{
    p.record("failing task ran");
    throw std::runtime_error("the feed went away");
    co_return;
}

mallard::task<> recording_task(probe& p, std::string what)
{
    p.record(what);
    co_return;
}

} // namespace

TEST_CASE("server::spawn runs a task on the server's loops until it stops", "[operations][spawn]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log),
                             mallard::router{mallard::path<tick_view>("/ws/ticks", "ticks")});
    srv.get().spawn(ticker(srv.get(), p));

    mallard::testing::client c{srv.port(), "/ws/ticks"};
    REQUIRE(c.receive()->data == "joined");
    int last = 0;
    for (int seen = 0; seen < 3; ++seen) { // ticks, each after the one before
        auto const tick = c.receive();
        REQUIRE(tick);
        REQUIRE(tick->data.starts_with("tick "));
        auto const n = std::stoi(tick->data.substr(5));
        CHECK(n > last);
        last = n;
    }

    // An exception escaping a task is logged; the server and the ticker go on.
    srv.get().spawn(failing_task(p));
    CHECK(log.wait_for("a task spawned on the server failed: the feed went away"));
    CHECK(c.receive());
    CHECK(c.is_open());

    srv.stop(); // cancels the ticker; run() returns
    CHECK(p.wait_for("ticker cancelled: aborted"));
    srv.get().spawn(recording_task(p, "spawned after stop"));
    for (auto const& event : p.events())
        CHECK(event != "spawned after stop");
}

TEST_CASE("server::spawn before run starts the task with the loops", "[operations][spawn]")
{
    probe p;
    test::log_capture log;
    mallard::server srv(test::test_options(log),
                        mallard::router{mallard::path<tick_view>("/ws/ticks", "ticks")});
    srv.spawn(recording_task(p, "started"));
    std::thread runner([&] { srv.run(); });
    CHECK(p.wait_for("started"));
    srv.stop();
    runner.join();
}
