// SPDX-License-Identifier: BSL-1.0
// server::metrics() on a real server: per-route counts, handler exceptions by
// callback, upgrade refusals by status, and a call from a server thread.

#include "support.hpp"

#include <string>

namespace {

using test::probe;

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

/// Throws from the callback its query names; refuses with 401 when asked.
class failing_view : public mallard::websocket_view {
public:
    explicit failing_view(probe& p) : probe_(p) {}

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
    mallard::task<> on_close(mallard::close_reason why) override
    {
        probe_.record("close:" + std::to_string(static_cast<unsigned>(why.code)) + ":" +
                      std::string(mallard::to_string(why.cause)));
        co_return;
    }

private:
    probe& probe_;
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
