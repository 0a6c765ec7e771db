// SPDX-License-Identifier: BSL-1.0
// What each HTTP request gets, decided without sockets (detail/http/request_decision.hpp):
// every refusal's status, the plain answers, and the plan for an upgrade.

#include <mallard/detail/http/request_decision.hpp>
#include <mallard/router.hpp>
#include <mallard/websocket_view.hpp>

#include <catch2/catch.hpp>

#include <boost/beast/http/error.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>

namespace {

namespace http = boost::beast::http;
using mallard::detail::decide_request;
using mallard::detail::http_reply;
using mallard::detail::server_phase;
using mallard::detail::server_state;
using mallard::detail::static_file_reply;
using mallard::detail::upgrade_plan;

struct chat_view : mallard::websocket_view {
    static constexpr std::string_view subprotocols[] = {"chat.v2", "chat.v1"};
};

struct strict_view : mallard::websocket_view {
    static constexpr std::string_view subprotocols[] = {"strict.v1"};
    static constexpr bool require_subprotocol = true;
};

/// A server's state with three routes, no static folder, the default health path.
std::unique_ptr<server_state> make_state(mallard::server_options options = {})
{
    auto state = std::make_unique<server_state>();
    state->options = std::move(options);
    state->routes = mallard::router{
        mallard::path<chat_view>("/ws/chat/<room>", "chat",
                                 {.allowed_origins = {"https://chat.example"}}),
        mallard::path<strict_view>("/ws/strict", "strict"),
        mallard::path("/ws/broken", [] () -> std::unique_ptr<chat_view> {
            throw std::runtime_error("no database");
        }, "broken"),
    };
    return state;
}

/// A WebSocket upgrade request for `target`, as a browser sends it.
http::request<http::empty_body> upgrade_request(std::string target)
{
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(http::field::sec_websocket_version, "13");
    return req;
}

http::request<http::empty_body> plain_get(std::string target)
{
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    return req;
}

/// The reply a decision holds; fails the test when it is something else.
http_reply reply_of(mallard::detail::request_decision decision)
{
    REQUIRE(std::holds_alternative<http_reply>(decision));
    return std::get<http_reply>(std::move(decision));
}

} // namespace

TEST_CASE("An upgrade to a path no route matches gets 404", "[http]")
{
    auto state = make_state();
    auto const reply = reply_of(decide_request(upgrade_request("/ws/nowhere"), *state, server_phase::serving));
    CHECK(reply.response.result() == http::status::not_found);
    CHECK_FALSE(reply.keep_alive);
}

TEST_CASE("An upgrade that is not a GET gets 405 naming GET", "[http]")
{
    auto state = make_state();
    auto req = upgrade_request("/ws/chat/lobby");
    req.method(http::verb::post);
    auto const reply = reply_of(decide_request(req, *state, server_phase::serving));
    CHECK(reply.response.result() == http::status::method_not_allowed);
    CHECK(reply.response[http::field::allow] == "GET");
}

TEST_CASE("A plain GET on a WebSocket route gets 426 naming websocket", "[http]")
{
    auto state = make_state();
    auto const reply = reply_of(decide_request(plain_get("/ws/chat/lobby"), *state, server_phase::serving));
    CHECK(reply.response.result() == http::status::upgrade_required);
    CHECK(reply.response[http::field::upgrade] == "websocket");
    CHECK(reply.response[http::field::sec_websocket_version] == "13");
}

TEST_CASE("An origin the route does not allow gets 403, an allowed one or none passes",
          "[http]")
{
    auto state = make_state();
    auto req = upgrade_request("/ws/chat/lobby");
    req.set(http::field::origin, "https://evil.example");
    CHECK(reply_of(decide_request(req, *state, server_phase::serving)).response.result() ==
          http::status::forbidden);
    req.set(http::field::origin, "https://chat.example");
    CHECK(std::holds_alternative<upgrade_plan>(decide_request(req, *state, server_phase::serving)));
    req.erase(http::field::origin);
    CHECK(std::holds_alternative<upgrade_plan>(decide_request(req, *state, server_phase::serving)));
}

TEST_CASE("Headers over max_request_bytes get 431, bytes that are not HTTP get 400", "[http]")
{
    using mallard::detail::reply_to_read_error;
    auto const too_large = reply_to_read_error(http::error::header_limit);
    REQUIRE(too_large);
    CHECK(too_large->response.result() == http::status::request_header_fields_too_large);
    auto const garbage = reply_to_read_error(http::error::bad_method);
    REQUIRE(garbage);
    CHECK(garbage->response.result() == http::status::bad_request);
    // Nobody is left to read an answer.
    CHECK_FALSE(reply_to_read_error(http::error::end_of_stream));
    CHECK_FALSE(reply_to_read_error(boost::asio::error::connection_reset));
}

TEST_CASE("A bad request target or no common required subprotocol gets 400", "[http]")
{
    auto state = make_state();
    SECTION("a target that is not origin-form")
    {
        auto const reply = reply_of(decide_request(upgrade_request("http://x/ws"), *state, server_phase::serving));
        CHECK(reply.response.result() == http::status::bad_request);
    }
    SECTION("a required subprotocol the client does not offer")
    {
        auto req = upgrade_request("/ws/strict");
        req.set(http::field::sec_websocket_protocol, "other.v9");
        auto const reply = reply_of(decide_request(req, *state, server_phase::serving));
        CHECK(reply.response.result() == http::status::bad_request);
        CHECK_THAT(reply.response.body(), Catch::Matchers::Contains("strict.v1"));
    }
}

TEST_CASE("An upgrade while the server stops gets 503, a factory that throws, 500", "[http]")
{
    auto state = make_state();
    CHECK(reply_of(decide_request(upgrade_request("/ws/chat/lobby"), *state, server_phase::stopping))
              .response.result() == http::status::service_unavailable);
    CHECK(reply_of(decide_request(upgrade_request("/ws/broken"), *state, server_phase::serving))
              .response.result() == http::status::internal_server_error);
}


TEST_CASE("While the server drains, upgrades and readiness get 503 with Retry-After, health 200",
          "[http][drain]")
{
    auto state = make_state({.drain_retry_after = std::chrono::seconds{7}});
    auto const ready = reply_of(decide_request(plain_get("/readyz"), *state, server_phase::serving));
    CHECK(ready.response.result() == http::status::ok);
    CHECK(ready.response.body() == "ready\n");
    for (auto const phase : {server_phase::draining, server_phase::stopping}) {
        auto const upgrade =
            reply_of(decide_request(upgrade_request("/ws/chat/lobby"), *state, phase));
        CHECK(upgrade.response.result() == http::status::service_unavailable);
        CHECK(upgrade.response[http::field::retry_after] == "7");
        auto const readiness = reply_of(decide_request(plain_get("/readyz"), *state, phase));
        CHECK(readiness.response.result() == http::status::service_unavailable);
        CHECK(readiness.response[http::field::retry_after] == "7");
        CHECK(reply_of(decide_request(plain_get("/healthz"), *state, phase)).response.result() ==
              http::status::ok);
    }
    auto without = make_state({.readiness_path = ""});
    CHECK(reply_of(decide_request(plain_get("/readyz"), *without, server_phase::draining))
              .response.result() == http::status::not_found);
}
TEST_CASE("A file of the static folder is served for GET and HEAD, other methods get 405",
          "[http]")
{
    auto const root = std::filesystem::temp_directory_path() /
                      ("mallard-decision-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root);
    std::ofstream(root / "index.html") << "<p>hi</p>";
    auto state = make_state();
    state->static_root = std::filesystem::canonical(root);

    auto decision = decide_request(plain_get("/index.html"), *state, server_phase::serving);
    REQUIRE(std::holds_alternative<static_file_reply>(decision));
    auto const& file = std::get<static_file_reply>(decision);
    CHECK(file.file == *state->static_root / "index.html");
    CHECK_FALSE(file.head_only);
    CHECK(file.keep_alive);

    auto head = plain_get("/index.html");
    head.method(http::verb::head);
    decision = decide_request(head, *state, server_phase::serving);
    REQUIRE(std::holds_alternative<static_file_reply>(decision));
    CHECK(std::get<static_file_reply>(decision).head_only);

    auto post = plain_get("/index.html");
    post.method(http::verb::post);
    auto const refused = reply_of(decide_request(post, *state, server_phase::serving));
    CHECK(refused.response.result() == http::status::method_not_allowed);
    CHECK(refused.response[http::field::allow] == "GET, HEAD");

    CHECK(reply_of(decide_request(plain_get("/../etc/passwd"), *state, server_phase::serving))
              .response.result() == http::status::not_found);
    CHECK(reply_of(decide_request(plain_get("/missing.html"), *state, server_phase::serving))
              .response.result() == http::status::not_found);
    std::filesystem::remove_all(root);
}

TEST_CASE("The health path answers 200 ok and keeps the connection", "[http]")
{
    auto state = make_state({.health_path = "/healthz"});
    auto const reply = reply_of(decide_request(plain_get("/healthz"), *state, server_phase::serving));
    CHECK(reply.response.result() == http::status::ok);
    CHECK(reply.response.body() == "ok\n");
    CHECK(reply.keep_alive);
    CHECK(reply_of(decide_request(plain_get("/other"), *state, server_phase::serving)).response.result() ==
          http::status::not_found);
}

TEST_CASE("The user's http_handler answers first, when it throws the client gets 500",
          "[http]")
{
    mallard::server_options options;
    options.http_handler = [](mallard::request const& req)
        -> std::optional<http::response<http::string_body>> {
        if (req.path() == "/throw")
            throw std::runtime_error("bug");
        if (req.path() != "/api/time")
            return std::nullopt;
        http::response<http::string_body> res{http::status::ok, 10};
        res.body() = "12:00";
        return res;
    };
    auto state = make_state(std::move(options));
    auto const reply = reply_of(decide_request(plain_get("/api/time"), *state, server_phase::serving));
    CHECK(reply.response.result() == http::status::ok);
    CHECK(reply.response.body() == "12:00");
    CHECK(reply.response.version() == 11); // the request's version, whatever the handler set
    CHECK(reply_of(decide_request(plain_get("/throw"), *state, server_phase::serving)).response.result() ==
          http::status::internal_server_error);
    // Declined: the health check and the rest still answer.
    CHECK(reply_of(decide_request(plain_get("/healthz"), *state, server_phase::serving)).response.result() ==
          http::status::ok);
}

TEST_CASE("An upgrade plan carries the route, a new view, the subprotocol and the request",
          "[http]")
{
    auto state = make_state();
    auto req = upgrade_request("/ws/chat/lob%20by?name=ann");
    req.set(http::field::sec_websocket_protocol, "chat.v1, chat.v2");
    auto decision = decide_request(req, *state, server_phase::serving);
    REQUIRE(std::holds_alternative<upgrade_plan>(decision));
    auto const& plan = std::get<upgrade_plan>(decision);
    CHECK(plan.matched->name() == "chat");
    CHECK(plan.view != nullptr);
    CHECK(plan.subprotocol == "chat.v2"); // our preference, not the client's order
    CHECK(plan.request.path_param("room") == "lob by");
    CHECK(plan.request.query_param("name") == "ann");

    auto without = upgrade_request("/ws/chat/lobby");
    auto second = decide_request(without, *state, server_phase::serving);
    REQUIRE(std::holds_alternative<upgrade_plan>(second));
    CHECK(std::get<upgrade_plan>(second).subprotocol.empty());
}

TEST_CASE("A Sec-WebSocket-Key must be base64 of 16 bytes, sent once, or the upgrade gets 400",
          "[http]")
{
    using mallard::detail::is_websocket_key;
    CHECK(is_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));   // RFC 6455's own example
    CHECK(is_websocket_key("AAAAAAAAAAAAAAAAAAAAAA=="));
    CHECK_FALSE(is_websocket_key(""));
    CHECK_FALSE(is_websocket_key("!!!not-base64!!!"));
    CHECK_FALSE(is_websocket_key("AAECAwQFBgc="));              // 8 bytes
    CHECK_FALSE(is_websocket_key("dGhlIHNhbXBsZSBub25jZQ"));    // no padding
    CHECK_FALSE(is_websocket_key("dGhlIHNhbXBsZSBub25jZR=="));  // bits past the 16th byte
    CHECK_FALSE(is_websocket_key("dGhlIHNhbXBsZSBub25j*Q=="));
    CHECK_FALSE(is_websocket_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==")); // 22 bytes

    auto state = make_state();
    auto req = upgrade_request("/ws/chat/lobby");
    req.set(http::field::sec_websocket_key, "AAECAwQFBgc=");
    CHECK(reply_of(decide_request(req, *state, server_phase::serving)).response.result() ==
          http::status::bad_request);
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.insert(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    CHECK(reply_of(decide_request(req, *state, server_phase::serving)).response.result() ==
          http::status::bad_request);
    req.erase(http::field::sec_websocket_key);
    CHECK(reply_of(decide_request(req, *state, server_phase::serving)).response.result() ==
          http::status::bad_request);
}

TEST_CASE("An HTTP/1.1 request without Host, or any with two, gets 400", "[http]")
{
    auto state = make_state();
    auto upgrade = upgrade_request("/ws/chat/lobby");
    upgrade.erase(http::field::host);
    CHECK(reply_of(decide_request(upgrade, *state, server_phase::serving)).response.result() ==
          http::status::bad_request);
    auto health = plain_get("/healthz");
    health.insert(http::field::host, "other");
    CHECK(reply_of(decide_request(health, *state, server_phase::serving)).response.result() ==
          http::status::bad_request);
    // HTTP/1.0 has no Host requirement.
    http::request<http::empty_body> old{http::verb::get, "/healthz", 10};
    CHECK(reply_of(decide_request(old, *state, server_phase::serving)).response.result() == http::status::ok);
}
