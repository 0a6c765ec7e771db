// SPDX-License-Identifier: BSL-1.0
// Before the 101: the view's upgrade decision, subprotocol negotiation, and
// wss:// (TLS beside plain, and every certificate setup error).

#include "certificates.hpp"
#include "support.hpp"

#include <mallard/testing/tls_client.hpp>
#include <mallard/tls.hpp>

#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using test::probe;
using test::test_certificates;

namespace {

/// Admits `?token=good` as "alice"; refuses other tokens with 401, throws
/// for `?token=throw` and never decides for `?token=hang`.
class guarded_view : public mallard::websocket_view {
public:
    explicit guarded_view(probe& p) : probe_(p) {}

    mallard::task<mallard::upgrade_decision> on_upgrade() override
    {
        auto const token = request().query_param("token").value_or("");
        if (token == "throw")
            throw std::runtime_error("token service down");
        if (token == "hang") {
            boost::asio::steady_timer forever(co_await boost::asio::this_coro::executor, 1h);
            co_await forever.async_wait(boost::asio::use_awaitable);
        }
        if (token != "good")
            co_return mallard::upgrade_decision::reject(mallard::http::status::unauthorized,
                                                        "Wrong or missing token\n")
                .header(mallard::http::field::www_authenticate, "Bearer");
        user_ = "alice";
        co_return mallard::upgrade_decision::accept().header(mallard::http::field::set_cookie,
                                                             "session=abc");
    }

    mallard::task<> on_open() override
    {
        probe_.record("open");
        co_await send_text("hello " + user_);
    }

private:
    probe& probe_;
    std::string user_; // set by on_upgrade, read by on_open
};

/// Speaks two subprotocols and tells its client which one was agreed.
class versioned_view : public mallard::websocket_view {
public:
    static constexpr std::string_view subprotocols[] = {"chat.v2", "chat.v1"};

    mallard::task<> on_open() override { co_await send_text("agreed:" + subprotocol()); }
};

mallard::router guarded_routes(probe& p)
{
    return mallard::router{
        mallard::path("/ws/guarded", [&p] { return std::make_unique<guarded_view>(p); },
                      "guarded"),
    };
}

mallard::router versioned_routes()
{
    return mallard::router{
        mallard::path<versioned_view>("/ws/chat", "chat"),
        mallard::path<versioned_view>("/ws/strict", "strict", {.require_subprotocol = true}),
        mallard::path<versioned_view>("/ws/custom", "custom", {.subprotocols = std::vector<std::string>{"x.v9"}}),
    };
}

/// The body of an HTTP answer: what follows the blank line.
std::string body_of(std::string const& reply)
{
    auto const end = reply.find("\r\n\r\n");
    return end == std::string::npos ? std::string{} : reply.substr(end + 4);
}

/// The 101 response's headers for an upgrade offering `protocols` (none when empty).
std::string handshake_reply(unsigned short port, std::string const& target,
                            std::string const& protocols)
{
    test::raw_connection raw(port);
    raw.write(test::upgrade_request(
        target, protocols.empty() ? "" : "Sec-WebSocket-Protocol: " + protocols + "\r\n"));
    return raw.read_until("\r\n\r\n");
}

} // namespace

TEST_CASE("on_upgrade refuses with its status, headers and body before any upgrade", "[upgrade]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), guarded_routes(p));
    test::raw_connection raw(srv.port());
    raw.write(test::upgrade_request("/ws/guarded?token=wrong"));
    auto [reply, closed] = raw.read_until_closed();
    CHECK(closed);
    CHECK(reply.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
    CHECK_THAT(reply, Contains("WWW-Authenticate: Bearer\r\n"));
    CHECK(body_of(reply) == "Wrong or missing token\n");

    mallard::testing::client admitted{srv.port(), "/ws/guarded?token=good"};
    auto greeting = admitted.receive();
    REQUIRE(greeting);
    CHECK(greeting->data == "hello alice"); // state set in on_upgrade, seen in on_open
    CHECK(p.count("open") == 1);
}

TEST_CASE("on_upgrade's headers reach the 101 response", "[upgrade]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), guarded_routes(p));
    auto const reply = handshake_reply(srv.port(), "/ws/guarded?token=good", "");
    CHECK(reply.starts_with("HTTP/1.1 101"));
    CHECK_THAT(reply, Contains("Set-Cookie: session=abc\r\n"));
    CHECK(p.wait_for("open"));
}

TEST_CASE("An on_upgrade that throws answers 500 and the server serves on", "[upgrade]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), guarded_routes(p));
    {
        test::raw_connection raw(srv.port());
        CHECK(raw.http_status(test::upgrade_request("/ws/guarded?token=throw")) == 500);
    }
    CHECK(log.contains("token service down"));
    mallard::testing::client admitted{srv.port(), "/ws/guarded?token=good"};
    CHECK(admitted.receive());
}

TEST_CASE("An on_upgrade that never finishes is cut off at the handshake timeout", "[upgrade]")
{
    probe p;
    test::log_capture log;
    auto options = test::test_options(log);
    options.handshake_timeout = 300ms;
    test::running_server srv(std::move(options), guarded_routes(p));
    {
        test::raw_connection raw(srv.port());
        CHECK(raw.http_status(test::upgrade_request("/ws/guarded?token=hang"), 10s) == 503);
    }
    CHECK(p.count("open") == 0);
    mallard::testing::client admitted{srv.port(), "/ws/guarded?token=good"};
    CHECK(admitted.receive());
}

TEST_CASE("The server picks the first of its subprotocols that the client offers", "[upgrade]")
{
    test::log_capture log;
    test::running_server srv(test::test_options(log), versioned_routes());

    // Our preference wins over the client's order; several header lines count.
    {
        mallard::testing::client preferred{srv.port(), "/ws/chat",
                                           {.subprotocols = {"chat.v1", "chat.v2"}}};
        CHECK(preferred.subprotocol() == "chat.v2");
        REQUIRE(preferred.receive()->data == "agreed:chat.v2");
    }
    {
        test::raw_connection raw(srv.port());
        raw.write(test::upgrade_request("/ws/chat", "Sec-WebSocket-Protocol: other\r\n"
                                                    "Sec-WebSocket-Protocol: chat.v1\r\n"));
        CHECK_THAT(raw.read_until("\r\n\r\n"), Contains("Sec-WebSocket-Protocol: chat.v1\r\n"));
    }
    // No overlap, and no offer: accepted without the header, the view sees none.
    auto const reply = handshake_reply(srv.port(), "/ws/chat", "other, CHAT.V2");
    CHECK(reply.starts_with("HTTP/1.1 101"));
    CHECK(reply.find("Sec-WebSocket-Protocol") == std::string::npos);
    mallard::testing::client other{srv.port(), "/ws/chat", {.subprotocols = {"other", "CHAT.V2"}}};
    CHECK(other.subprotocol().empty());
    REQUIRE(other.receive()->data == "agreed:");
    mallard::testing::client plain{srv.port(), "/ws/chat"};
    auto agreed = plain.receive();
    REQUIRE(agreed);
    CHECK(agreed->data == "agreed:");

    // A route's own list replaces the view's.
    mallard::testing::client custom{srv.port(), "/ws/custom", {.subprotocols = {"chat.v2", "x.v9"}}};
    CHECK(custom.subprotocol() == "x.v9");
}

TEST_CASE("A route that requires a subprotocol refuses clients without a common one", "[upgrade]")
{
    test::log_capture log;
    test::running_server srv(test::test_options(log), versioned_routes());
    for (std::string offer : {"", "other"}) {
        test::raw_connection raw(srv.port());
        raw.write(test::upgrade_request(
            "/ws/strict", offer.empty() ? "" : "Sec-WebSocket-Protocol: " + offer + "\r\n"));
        auto [reply, closed] = raw.read_until_closed();
        CHECK(reply.starts_with("HTTP/1.1 400"));
        CHECK_THAT(body_of(reply), Contains("chat.v2, chat.v1"));
    }
    mallard::testing::client strict{srv.port(), "/ws/strict", {.subprotocols = {"chat.v1"}}};
    CHECK(strict.subprotocol() == "chat.v1");
    CHECK_THROWS_MATCHES(mallard::testing::client(srv.port(), "/ws/strict"),
                         mallard::testing::upgrade_refused,
                         Catch::Predicate<mallard::testing::upgrade_refused>(
                             [](auto const& e) { return e.status() == 400; }, "status 400"));
}

TEST_CASE("Subprotocol setup errors name the route and the fix", "[upgrade][setup]")
{
    CHECK_THROWS_WITH(mallard::path<versioned_view>("/a", "a", {.subprotocols = std::vector<std::string>{"bad name"}}),
                      Contains("mallard::path(\"/a\", \"a\")") && Contains("bad name"));
    CHECK_THROWS_WITH(mallard::path<mallard::websocket_view>("/b", "b",
                                                             {.require_subprotocol = true}),
                      Contains("require_subprotocol") && Contains("no subprotocols are listed"));
    CHECK_THROWS_WITH(mallard::upgrade_decision::reject(mallard::http::status::ok),
                      Contains("4xx or 5xx"));
}

// --- wss:// -------------------------------------------------------------------

namespace {

/// GET `target` over TLS on `port` (certificate not checked); the whole answer.
std::string https_get(unsigned short port, std::string const& target)
{
    namespace net = boost::asio;
    net::io_context ioc;
    net::ssl::context ctx(net::ssl::context::tls_client);
    ctx.set_verify_mode(net::ssl::verify_none);
    net::ssl::stream<net::ip::tcp::socket> stream(ioc, ctx);
    stream.next_layer().connect({net::ip::make_address("127.0.0.1"), port});
    stream.handshake(net::ssl::stream_base::client);
    std::string const request =
        "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    net::write(stream, net::buffer(request));
    std::string reply;
    boost::system::error_code ec;
    net::read(stream, net::dynamic_buffer(reply), ec); // to the end of the answer
    return reply;
}

} // namespace

TEST_CASE("One server serves wss:// and ws:// on two ports", "[tls]")
{
    test_certificates certs;
    probe p;
    test::log_capture log;
    auto options = test::test_options(log);
    options.tls = mallard::load_tls(
        {.certificate_chain_file = certs.path("cert.pem"), .private_key_file = certs.path("key.pem")});
    options.plain_port = 0;
    test::running_server srv(std::move(options), guarded_routes(p));
    REQUIRE(srv.get().plain_port() != 0);
    REQUIRE(srv.get().plain_port() != srv.port());

    auto const secure = https_get(srv.port(), "/healthz");
    CHECK(secure.starts_with("HTTP/1.1 200"));
    CHECK(body_of(secure) == "ok\n");

    mallard::testing::client plain{srv.get().plain_port(), "/ws/guarded?token=good"};
    auto greeting = plain.receive();
    REQUIRE(greeting);
    CHECK(greeting->data == "hello alice");
    mallard::testing::tls_client secure_ws{srv.port(), "/ws/guarded?token=good",
                                           {.certificate_file = certs.path("cert.pem")}};
    CHECK(secure_ws.response_header("Set-Cookie") == "session=abc");
    greeting = secure_ws.receive();
    REQUIRE(greeting);
    CHECK(greeting->data == "hello alice");

    // Cleartext on the TLS port is dropped without an answer; TLS still works.
    {
        test::raw_connection raw(srv.port());
        raw.write(test::upgrade_request("/ws/guarded?token=good"));
        auto [reply, closed] = raw.read_until_closed();
        CHECK(closed);
        CHECK(reply.find("HTTP/1.1") == std::string::npos);
    }
    CHECK(https_get(srv.port(), "/healthz").starts_with("HTTP/1.1 200"));
}

TEST_CASE("Certificate and key problems throw at setup, naming the file and the problem",
          "[tls][setup]")
{
    test_certificates certs;
    auto const cert = certs.path("cert.pem");
    auto const key = certs.path("key.pem");
    auto const missing = certs.path("missing.pem");

    CHECK_THROWS_WITH(
        mallard::load_tls({.certificate_chain_file = missing, .private_key_file = key}),
        Contains("cannot read certificate chain file \"" + missing + "\""));
    CHECK_THROWS_WITH(
        mallard::load_tls({.certificate_chain_file = key, .private_key_file = key}),
        Contains(key) && Contains("holds no PEM certificate"));
    CHECK_THROWS_WITH(mallard::load_tls({.certificate_chain_file = cert,
                                         .private_key_file = certs.path("other_key.pem")}),
                      Contains("other_key.pem") && Contains("does not match the certificate"));
    CHECK_THROWS_WITH(mallard::load_tls({.certificate_chain_file = cert}),
                      Contains("no private key; set private_key_file"));
    CHECK_THROWS_WITH(mallard::load_tls({.certificate_chain_file = cert,
                                         .private_key_file = key,
                                         .private_key_pem = certs.read("key.pem")}),
                      Contains("both private_key_file and private_key_pem"));
    // In memory works as files do.
    CHECK(mallard::load_tls({.certificate_chain_pem = certs.read("cert.pem"),
                             .private_key_pem = certs.read("key.pem")}));

    test::log_capture log;
    auto options = test::test_options(log);
    options.plain_port = 0;
    CHECK_THROWS_WITH(mallard::server(options, versioned_routes()),
                      Contains("plain_port") && Contains("only applies with tls"));
}
