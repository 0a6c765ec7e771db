// SPDX-License-Identifier: BSL-1.0
// mallard::testing::client and tls_client: what a test of a view can offer,
// send and read, against a real server on 127.0.0.1.

#include "certificates.hpp"
#include "support.hpp"

#include <mallard/testing/tls_client.hpp>
#include <mallard/tls.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <system_error>

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

/// Echoes every message with its kind; on open, says what the upgrade request
/// carried and which subprotocol was agreed.
class mirror_view : public mallard::websocket_view {
public:
    static constexpr std::string_view subprotocols[] = {"game.v2", "game.v1"};

    mallard::task<mallard::upgrade_decision> on_upgrade() override
    {
        co_return mallard::upgrade_decision::accept().header("X-Mirror", "on");
    }

    mallard::task<> on_open() override
    {
        co_await send_text("origin=" + std::string(request().header("Origin")) +
                           " cookie=" + std::string(request().header("Cookie")) +
                           " auth=" + std::string(request().header("Authorization")) +
                           " protocol=" + subprotocol());
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        if (data == "burst") { // three messages at once, before anything else is read
            static constexpr std::string_view burst[] = {"one", "two", "three"};
            for (auto text : burst)
                co_await send_text(text);
            co_return;
        }
        if (op == mallard::opcode::binary)
            co_await send_binary(data);
        else
            co_await send_text(data);
    }
};

mallard::router mirror_routes()
{
    return mallard::router{
        mallard::path<mirror_view>("/ws/mirror", "mirror"),
        mallard::path<mirror_view>("/ws/deflate", "deflate",
                                   {.permessage_deflate = true, .compression_threshold = 64}),
    };
}

} // namespace

TEST_CASE("The testing client offers subprotocols and sends extra headers", "[testing_client]")
{
    test::log_capture log;
    test::running_server srv(test::test_options(log), mirror_routes());

    mallard::testing::client c{srv.port(), "/ws/mirror",
                               {.subprotocols = {"game.v1", "game.v2"},
                                .headers = {{"Origin", "https://example.com"},
                                            {"Cookie", "session=abc"},
                                            {"Authorization", "Bearer t0ken"}}}};
    CHECK(c.subprotocol() == "game.v2"); // the server's preference wins
    CHECK(c.response_header("x-mirror") == "on");
    CHECK(c.response_header("X-Absent").empty());
    CHECK_FALSE(c.compressed());
    auto opened = c.receive();
    REQUIRE(opened);
    CHECK(opened->data ==
          "origin=https://example.com cookie=session=abc auth=Bearer t0ken protocol=game.v2");
    c.close();

    mallard::testing::client other{srv.port(), "/ws/mirror", {.subprotocols = {"chat.v1"}}};
    CHECK(other.subprotocol().empty());
    REQUIRE(other.receive()->data == "origin= cookie= auth= protocol=");
}

TEST_CASE("The testing client sends and receives binary messages", "[testing_client]")
{
    test::log_capture log;
    test::running_server srv(test::test_options(log), mirror_routes());
    mallard::testing::client c{srv.port(), "/ws/mirror"};
    REQUIRE(c.receive()); // the greeting

    std::string const bytes{"\x00\x01\xff\xfe binary", 12};
    c.send_binary(bytes);
    auto echoed = c.receive();
    REQUIRE(echoed);
    CHECK(echoed->op == mallard::opcode::binary);
    CHECK(echoed->data == bytes);
    c.send_text("text");
    echoed = c.receive();
    REQUIRE(echoed);
    CHECK(echoed->op == mallard::opcode::text);
    CHECK(echoed->data == "text");
}

TEST_CASE("The testing client's ping waits for its pong and keeps what arrives meanwhile",
          "[testing_client]")
{
    test::log_capture log;
    test::running_server srv(test::test_options(log), mirror_routes());
    mallard::testing::client c{srv.port(), "/ws/mirror"};

    c.ping("first");
    c.send_text("burst");
    c.ping("second"); // the three messages come first, and are kept
    for (char const* expected : {"origin= cookie= auth= protocol=", "one", "two", "three"}) {
        auto next = c.receive();
        REQUIRE(next);
        CHECK(next->data == expected);
    }
    // Nothing more: a receive that times out leaves the connection usable.
    CHECK_THROWS_WITH(c.receive(50ms), Contains("nothing arrived within 50 ms"));
    CHECK(c.is_open());
    c.send_text("still here");
    CHECK(c.receive()->data == "still here");
    c.close();
    CHECK(c.close_code() == mallard::close_code::normal);
    CHECK_THROWS_WITH(mallard::testing::client(srv.port(), "/ws/mirror").ping(std::string(126, 'x')),
                      Contains("at most 125 bytes"));
}

TEST_CASE("The testing client negotiates permessage-deflate and reads compressed messages",
          "[testing_client]")
{
    test::log_capture log;
    test::running_server srv(test::test_options(log), mirror_routes());

    mallard::testing::client c{srv.port(), "/ws/deflate", {.compression = true}};
    CHECK(c.compressed());
    CHECK_THAT(c.response_header("Sec-WebSocket-Extensions"), Contains("permessage-deflate"));
    REQUIRE(c.receive());
    std::string large;
    for (int i = 0; large.size() < 20000; ++i)
        large += "reading " + std::to_string(i % 97) + "; ";
    c.send_text(large);
    auto echoed = c.receive();
    REQUIRE(echoed);
    CHECK(echoed->data == large);
    c.send_binary(large);
    echoed = c.receive();
    REQUIRE(echoed);
    CHECK(echoed->op == mallard::opcode::binary);
    CHECK(echoed->data == large);

    mallard::testing::client plain{srv.port(), "/ws/deflate"};
    CHECK_FALSE(plain.compressed());
    mallard::testing::client refused{srv.port(), "/ws/mirror", {.compression = true}};
    CHECK_FALSE(refused.compressed()); // the route does not compress
}

TEST_CASE("The testing TLS client speaks wss:// and checks the server's certificate",
          "[testing_client][tls]")
{
    test::test_certificates certs;
    test::log_capture log;
    auto options = test::test_options(log);
    options.tls = mallard::load_tls(
        {.certificate_chain_file = certs.path("cert.pem"), .private_key_file = certs.path("key.pem")});
    test::running_server srv(std::move(options), mirror_routes());

    mallard::testing::tls_client c{srv.port(), "/ws/mirror",
                                   {.certificate_file = certs.path("cert.pem")},
                                   {.subprotocols = {"game.v1"},
                                    .headers = {{"Origin", "https://example.com"}},
                                    .compression = true}};
    CHECK(c.subprotocol() == "game.v1");
    CHECK_FALSE(c.compressed());
    REQUIRE(c.receive()->data == "origin=https://example.com cookie= auth= protocol=game.v1");
    c.send_text("over TLS");
    CHECK(c.receive()->data == "over TLS");
    c.ping("tls");
    c.close();
    CHECK(c.close_code() == mallard::close_code::normal);

    mallard::testing::tls_client deflated{srv.port(), "/ws/deflate",
                                          {.certificate_file = certs.path("cert.pem")},
                                          {.compression = true}};
    CHECK(deflated.compressed());
    REQUIRE(deflated.receive());
    deflated.send_text(std::string(5000, 'z'));
    CHECK(deflated.receive()->data == std::string(5000, 'z'));

    // Another certificate, or another name, is not trusted.
    CHECK_THROWS_AS(mallard::testing::tls_client(srv.port(), "/ws/mirror",
                                                 {.certificate_file = certs.path("other_cert.pem")}),
                    std::system_error);
    CHECK_THROWS_AS(mallard::testing::tls_client(srv.port(), "/ws/mirror",
                                                 {.certificate_file = certs.path("cert.pem"),
                                                  .server_name = "example.com"}),
                    std::system_error);
    CHECK_THROWS_WITH(mallard::testing::tls_client(srv.port(), "/ws/mirror",
                                                   {.certificate_file = certs.path("missing.pem")}),
                      Contains("missing.pem"));
    // The server served the refused ones no upgrade and goes on.
    mallard::testing::tls_client again{srv.port(), "/ws/mirror",
                                       {.certificate_file = certs.path("cert.pem")}};
    CHECK(again.receive());
}
