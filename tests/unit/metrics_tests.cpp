// SPDX-License-Identifier: BSL-1.0
// The metrics without a server: a worker's counters summed (detail/stats_counters.hpp),
// the Prometheus text written from them (to_prometheus), and the answers at
// metrics_path and status_path (detail/http/request_decision.hpp).

#include <mallard/detail/http/request_decision.hpp>
#include <mallard/detail/stats_counters.hpp>
#include <mallard/router.hpp>
#include <mallard/server_metrics.hpp>
#include <mallard/websocket_view.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <variant>

namespace {

namespace http = boost::beast::http;
using mallard::close_cause;
using mallard::detail::stats_counters;

bool has_line(std::string const& text, std::string const& line)
{
    return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

} // namespace

TEST_CASE("A worker's counters add up per route: open is opened minus closed", "[metrics]")
{
    stats_counters counters;
    for (int i = 0; i < 5; ++i)
        counters.opened();
    counters.closed(1000, close_cause::peer_closed);
    counters.closed(1000, close_cause::peer_closed);
    counters.closed(1008, close_cause::slow_consumer);
    counters.closed(3007, close_cause::server_closed);  // 3000-3015 one by one
    counters.closed(4999, close_cause::server_closed);  // beyond the slots: code 0
    counters.received(10);
    counters.sent(7);
    counters.sent(3);
    counters.dropped(4);
    counters.published();
    counters.threw(mallard::handler_callback::on_receive);

    mallard::route_metrics total;
    counters.add_to(total);
    counters.add_to(total); // a second worker's, as the server sums them
    CHECK(total.connections_opened == 10);
    CHECK(total.connections_open == 0);
    CHECK(total.messages_in == 2);
    CHECK(total.bytes_in == 20);
    CHECK(total.messages_out == 4);
    CHECK(total.bytes_out == 20);
    CHECK(total.messages_dropped == 8);
    CHECK(total.publishes == 2);
    CHECK(total.exceptions[static_cast<std::size_t>(mallard::handler_callback::on_receive)] == 2);
    auto count_of = [&](std::uint16_t code, close_cause cause) -> std::uint64_t {
        for (auto const& c : total.closes)
            if (c.code == code && c.cause == cause)
                return c.count;
        return 0;
    };
    CHECK(total.closes.size() == 4);
    CHECK(count_of(1000, close_cause::peer_closed) == 4);
    CHECK(count_of(1008, close_cause::slow_consumer) == 2);
    CHECK(count_of(3007, close_cause::server_closed) == 2);
    CHECK(count_of(0, close_cause::server_closed) == 2);
}

TEST_CASE("A send-queue sample counts connections into the depth buckets", "[metrics]")
{
    stats_counters::queue_sample sample;
    sample.add(0);
    sample.add(1024);      // on a bound: that bucket
    sample.add(1025);      // the next
    sample.add(100 << 20); // over every bound: the last
    stats_counters counters;
    counters.sampled(sample);
    mallard::route_metrics total;
    counters.add_to(total);
    CHECK(total.send_queue_bytes == 0 + 1024 + 1025 + (100 << 20));
    CHECK(total.send_queue_depth[0] == 1);
    CHECK(total.send_queue_depth[1] == 1);
    CHECK(total.send_queue_depth[2] == 1);
    CHECK(total.send_queue_depth.back() == 1);
}

TEST_CASE("to_prometheus writes the text format with a HELP and TYPE line per metric",
          "[metrics]")
{
    mallard::server_metrics metrics;
    mallard::route_metrics chat;
    chat.route = "chat \"rooms\"\\";
    chat.pattern = "/ws/chat/<room>";
    chat.slow_consumer = mallard::slow_consumer_policy::keep_latest;
    chat.connections_open = 2;
    chat.connections_opened = 5;
    chat.messages_in = 11;
    chat.bytes_in = 1234;
    chat.send_queue_bytes = 2048;
    chat.send_queue_depth[0] = 1; // one empty queue, one of 2 KiB
    chat.send_queue_depth[2] = 1;
    chat.closes.push_back({1001, close_cause::receive_timeout, 3});
    metrics.routes.push_back(chat);
    metrics.upgrades_refused[404] = 7;
    metrics.groups = 1;
    metrics.group_members = 2;
    metrics.backplane.up = false;
    metrics.process.cpu_seconds = 1.5;

    auto const text = mallard::to_prometheus(metrics);
    auto const route = std::string(R"(route="chat \"rooms\"\\")");
    CHECK(has_line(text, "# TYPE mallard_connections_open gauge"));
    CHECK(has_line(text, "mallard_connections_open{" + route + "} 2"));
    CHECK(has_line(text, "# TYPE mallard_connections_opened_total counter"));
    CHECK(has_line(text, "mallard_connections_opened_total{" + route + "} 5"));
    CHECK(has_line(text, "mallard_connections_closed_total{" + route +
                             R"(,code="1001",cause="receive_timeout"} 3)"));
    CHECK(has_line(text, R"(mallard_upgrades_refused_total{status="404"} 7)"));
    CHECK(has_line(text, "mallard_received_messages_total{" + route + "} 11"));
    CHECK(has_line(text, "mallard_received_bytes_total{" + route + "} 1234"));
    CHECK(has_line(text, "mallard_send_queue_bytes{" + route + "} 2048"));
    // Buckets are cumulative; _count is the connections sampled.
    CHECK(has_line(text, "mallard_send_queue_depth_bytes_bucket{" + route + R"(,le="0"} 1)"));
    CHECK(has_line(text, "mallard_send_queue_depth_bytes_bucket{" + route + R"(,le="1024"} 1)"));
    CHECK(has_line(text, "mallard_send_queue_depth_bytes_bucket{" + route + R"(,le="16384"} 2)"));
    CHECK(has_line(text, "mallard_send_queue_depth_bytes_bucket{" + route + R"(,le="+Inf"} 2)"));
    CHECK(has_line(text, "mallard_send_queue_depth_bytes_count{" + route + "} 2"));
    CHECK(has_line(text, "mallard_slow_consumer_dropped_messages_total{" + route +
                             R"(,policy="keep_latest"} 0)"));
    CHECK(has_line(text, "mallard_handler_exceptions_total{" + route +
                             R"(,callback="on_receive"} 0)"));
    CHECK(has_line(text, "mallard_groups 1"));
    CHECK(has_line(text, "mallard_group_members 2"));
    CHECK(has_line(text, "mallard_backplane_up 0"));
    CHECK(has_line(text, "process_cpu_seconds_total 1.5"));
    // Every sample's metric was introduced by its TYPE line.
    std::string current;
    std::size_t start = 0;
    while (start < text.size()) {
        auto const end = text.find('\n', start);
        REQUIRE(end != std::string::npos); // the text ends with a line feed
        auto const line = text.substr(start, end - start);
        start = end + 1;
        if (line.rfind("# TYPE ", 0) == 0) {
            current = line.substr(7, line.find(' ', 7) - 7);
            continue;
        }
        if (line.rfind("# HELP ", 0) == 0)
            continue;
        INFO(line);
        CHECK(line.rfind(current, 0) == 0);
    }
}

namespace {

struct plain_view : mallard::websocket_view {};

std::unique_ptr<mallard::detail::server_state> state_with(mallard::server_options options)
{
    auto state = std::make_unique<mallard::detail::server_state>();
    state->options = std::move(options);
    state->routes = mallard::router{mallard::path<plain_view>("/ws", "ws")};
    state->read_metrics = [] {
        mallard::server_metrics metrics;
        metrics.groups = 42;
        return metrics;
    };
    return state;
}

mallard::detail::http_reply answer(mallard::detail::server_state const& state,
                                   http::verb method, std::string target)
{
    http::request<http::empty_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    auto decision = mallard::detail::decide_request(req, state, mallard::detail::server_phase::serving);
    REQUIRE(std::holds_alternative<mallard::detail::http_reply>(decision));
    return std::get<mallard::detail::http_reply>(std::move(decision));
}

} // namespace

TEST_CASE("metrics_path answers GET with the metrics, status_path with the page", "[metrics]")
{
    auto const state = state_with({.metrics_path = "/metrics", .status_path = "/status"});
    auto const metrics = answer(*state, http::verb::get, "/metrics");
    CHECK(metrics.response.result() == http::status::ok);
    CHECK(metrics.response[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(metrics.response[http::field::cache_control] == "no-store");
    CHECK(has_line(metrics.response.body(), "mallard_groups 42"));
    CHECK(metrics.keep_alive);

    auto const page = answer(*state, http::verb::get, "/status");
    CHECK(page.response.result() == http::status::ok);
    CHECK(page.response[http::field::content_type] == "text/html; charset=utf-8");
    CHECK(page.response.body().find("const metricsPath = \"/metrics\";") != std::string::npos);
    // Self-contained: nothing is loaded from elsewhere.
    CHECK(page.response.body().find("src=") == std::string::npos);
    CHECK(page.response.body().find("http://") == std::string::npos);
    CHECK(page.response.body().find("https://") == std::string::npos);

    auto const post = answer(*state, http::verb::post, "/metrics");
    CHECK(post.response.result() == http::status::method_not_allowed);
    CHECK(post.response[http::field::allow] == "GET");
}

TEST_CASE("Without metrics_path there are no metrics", "[metrics]")
{
    auto const state = state_with({});
    CHECK(answer(*state, http::verb::get, "/metrics").response.result() ==
          http::status::not_found);
    CHECK(answer(*state, http::verb::get, "/status").response.result() ==
          http::status::not_found);
}

TEST_CASE("The status page's script cannot be ended by its metrics path", "[metrics]")
{
    auto const page = mallard::detail::status_page("/m\"</script>");
    CHECK(page.find("/m\"</script>") == std::string::npos);
    CHECK(page.find(R"(const metricsPath = "/m\u0022\u003c/script\u003e";)") != std::string::npos);
}

TEST_CASE("Operator paths are checked at setup", "[metrics][options]")
{
    using mallard::detail::check_server_options;
    CHECK_THROWS_WITH(check_server_options({.status_path = "/status"}),
                      Catch::Contains("status_path needs metrics_path"));
    CHECK_THROWS_WITH(check_server_options({.metrics_path = "metrics"}),
                      Catch::Contains("metrics_path \"metrics\" must start with '/'"));
    CHECK_THROWS_WITH(check_server_options({.health_path = "/x", .metrics_path = "/x"}),
                      Catch::Contains("health_path \"/x\" is also metrics_path"));
    CHECK_THROWS_WITH(check_server_options({.readiness_path = "ready"}),
                      Catch::Contains("readiness_path \"ready\" must start with '/'"));
    CHECK_THROWS_WITH(check_server_options({.drain_window = std::chrono::milliseconds{-1}}),
                      Catch::Contains("drain_window must not be negative"));
    CHECK_THROWS_WITH(check_server_options({.drain_close_code = mallard::close_code::normal}),
                      Catch::Contains("drain_close_code must be a code"));
    CHECK_NOTHROW(check_server_options({.drain_close_code = mallard::close_code::service_restart}));
    CHECK_NOTHROW(check_server_options({.drain_close_code = mallard::close_code{3500}}));
    CHECK_NOTHROW(check_server_options({.metrics_path = "/metrics", .status_path = "/status"}));
}

#include <mallard/server.hpp>

TEST_CASE("A metrics or status path that a route also matches is refused at setup",
          "[metrics][options]")
{
    auto const make = [](mallard::server_options options) {
        options.port = 0;
        options.handle_signals = false;
        mallard::server srv{options, mallard::router{mallard::path<plain_view>("/<name>", "any")}};
    };
    CHECK_THROWS_WITH(make({.metrics_path = "/metrics"}),
                      Catch::Contains("\"/metrics\" is also the path of route \"/<name>\""));
    CHECK_THROWS_WITH(make({.metrics_path = "/a/b", .status_path = "/status"}),
                      Catch::Contains("\"/status\" is also the path of route"));
    CHECK_THROWS_WITH(make({.metrics_path = "/m?x=1"}), Catch::Contains("is not a path"));
}

TEST_CASE("With an admin port, metrics and status are answered there only, and nothing else is",
          "[metrics][admin]")
{
    auto const state = state_with(
        {.metrics_path = "/metrics", .status_path = "/status", .admin_port = 0});
    using mallard::detail::listener_kind;
    using mallard::detail::request_context;
    using mallard::detail::server_phase;
    auto on = [&](listener_kind listener, std::string target, bool upgrade = false) {
        http::request<http::empty_body> req{http::verb::get, target, 11};
        req.set(http::field::host, "127.0.0.1");
        if (upgrade) {
            req.set(http::field::upgrade, "websocket");
            req.set(http::field::connection, "Upgrade");
            req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
            req.set(http::field::sec_websocket_version, "13");
        }
        auto decision = mallard::detail::decide_request(
            req, *state, request_context{server_phase::serving, {}, listener});
        REQUIRE(std::holds_alternative<mallard::detail::http_reply>(decision));
        return std::get<mallard::detail::http_reply>(std::move(decision)).response.result_int();
    };
    CHECK(on(listener_kind::public_port, "/metrics") == 404);
    CHECK(on(listener_kind::public_port, "/status") == 404);
    CHECK(on(listener_kind::public_port, "/healthz") == 200);
    CHECK(on(listener_kind::admin_port, "/metrics") == 200);
    CHECK(on(listener_kind::admin_port, "/status") == 200);
    CHECK(on(listener_kind::admin_port, "/healthz") == 200);
    CHECK(on(listener_kind::admin_port, "/readyz") == 200);
    CHECK(on(listener_kind::admin_port, "/ws", true) == 404); // no WebSocket there
    CHECK(on(listener_kind::admin_port, "/anything") == 404);
}
