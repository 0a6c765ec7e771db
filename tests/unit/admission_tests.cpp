// SPDX-License-Identifier: BSL-1.0
// Who the client is behind a proxy (detail/http/client_address.hpp) and how
// many connections it may hold (detail/admission.hpp), without sockets.

#include <mallard/detail/admission.hpp>
#include <mallard/detail/http/client_address.hpp>

#include <catch2/catch.hpp>

#include <boost/beast/http/fields.hpp>

#include <string>
#include <vector>

namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using mallard::detail::admission;
using mallard::detail::client_address;
using mallard::detail::trusted_networks;

net::ip::address ip(char const* text) { return net::ip::make_address(text); }

std::string client_of(char const* peer, std::vector<std::pair<std::string, std::string>> headers,
                      trusted_networks const& trusted)
{
    http::fields fields;
    for (auto const& [name, value] : headers)
        fields.insert(name, value);
    return client_address(ip(peer), fields, trusted).to_string();
}

} // namespace

TEST_CASE("Forwarding headers are believed only from a trusted proxy", "[address]")
{
    trusted_networks const trusted({"10.0.0.0/8", "192.0.2.7", "fd00::/8"});
    // Not from a proxy: the header is whatever the client wrote.
    CHECK(client_of("203.0.113.5", {{"X-Forwarded-For", "1.2.3.4"}}, trusted) == "203.0.113.5");
    // From one: the address it saw.
    CHECK(client_of("10.1.2.3", {{"X-Forwarded-For", "198.51.100.9"}}, trusted) ==
          "198.51.100.9");
    // Read from the right: what the client wrote first is not believed.
    CHECK(client_of("10.1.2.3", {{"X-Forwarded-For", "1.1.1.1, 198.51.100.9, 10.9.9.9"}},
                    trusted) == "198.51.100.9");
    // Several headers are one list, in order.
    CHECK(client_of("192.0.2.7",
                    {{"X-Forwarded-For", "1.1.1.1"}, {"x-forwarded-for", "198.51.100.9"}},
                    trusted) == "198.51.100.9");
    // Nothing forwarded: the proxy itself.
    CHECK(client_of("10.1.2.3", {}, trusted) == "10.1.2.3");
    // A hop that is no address stops the reading at the last trusted one.
    CHECK(client_of("10.1.2.3", {{"X-Forwarded-For", "198.51.100.9, unknown"}}, trusted) ==
          "10.1.2.3");
    // Every hop trusted: the farthest.
    CHECK(client_of("10.1.2.3", {{"X-Forwarded-For", "10.5.5.5"}}, trusted) == "10.5.5.5");
    // No trusted proxies at all: the peer, always.
    CHECK(client_of("10.1.2.3", {{"X-Forwarded-For", "198.51.100.9"}}, trusted_networks{}) ==
          "10.1.2.3");
}

TEST_CASE("Forwarded (RFC 7239) is read before X-Forwarded-For, ports and brackets stripped",
          "[address]")
{
    trusted_networks const trusted({"10.0.0.0/8", "::1"});
    CHECK(client_of("10.0.0.1",
                    {{"Forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"},
                     {"X-Forwarded-For", "1.1.1.1"}},
                    trusted) == "192.0.2.60");
    CHECK(client_of("10.0.0.1", {{"Forwarded", R"(for="[2001:db8:cafe::17]:4711")"}}, trusted) ==
          "2001:db8:cafe::17");
    CHECK(client_of("10.0.0.1", {{"Forwarded", R"(For="192.0.2.43:47011", for=10.3.3.3)"}},
                    trusted) == "192.0.2.43");
    CHECK(client_of("::1", {{"Forwarded", "for=_hidden"}}, trusted) == "::1");
    // A dual-stack socket's ::ffff:10.0.0.1 is the IPv4 proxy.
    CHECK(client_of("::ffff:10.0.0.1", {{"X-Forwarded-For", "198.51.100.9"}}, trusted) ==
          "198.51.100.9");
}

TEST_CASE("A trusted proxy that is not an address or network is refused at setup", "[address]")
{
    CHECK_THROWS_WITH(trusted_networks({"10.0.0.0/33"}),
                      Catch::Contains("trusted_proxies has \"10.0.0.0/33\""));
    CHECK_THROWS_WITH(trusted_networks({"proxy.local"}),
                      Catch::Contains("not an IP address or network"));
    CHECK(trusted_networks({"10.0.0.1"}).contains(ip("10.0.0.1")));
    CHECK_FALSE(trusted_networks({"10.0.0.1"}).contains(ip("10.0.0.2")));
}

TEST_CASE("Admission counts connections in all and per address, and takes them back",
          "[admission]")
{
    admission limits(3, 2);
    auto [a1, r1] = limits.admit(ip("192.0.2.1"));
    auto [a2, r2] = limits.admit(ip("192.0.2.1"));
    CHECK(r1 == admission::refusal::none);
    CHECK(r2 == admission::refusal::none);
    CHECK(limits.admit(ip("192.0.2.1")).second == admission::refusal::address_full);
    auto [b1, r3] = limits.admit(ip("192.0.2.2"));
    CHECK(r3 == admission::refusal::none);
    CHECK(limits.admit(ip("192.0.2.3")).second == admission::refusal::server_full);
    a1.release();
    a1.release(); // once only
    auto [c1, r4] = limits.admit(ip("192.0.2.3"));
    CHECK(r4 == admission::refusal::none);
    CHECK(limits.refused_address_full() == 1);
    CHECK(limits.refused_server_full() == 1);
}

TEST_CASE("A place moves with its connection and is given back once", "[admission]")
{
    admission limits(0, 1);
    auto [first, refused] = limits.admit(ip("192.0.2.1"));
    REQUIRE(refused == admission::refusal::none);
    {
        auto moved = std::move(first);
        first.release(); // the moved-from place holds nothing
        CHECK(limits.admit(ip("192.0.2.1")).second == admission::refusal::address_full);
    }
    CHECK(limits.admit(ip("192.0.2.1")).second == admission::refusal::none);
}

TEST_CASE("IPv6 clients count by their /64", "[admission]")
{
    admission limits(0, 1);
    auto [a, r1] = limits.admit(ip("2001:db8:1:2::10"));
    CHECK(r1 == admission::refusal::none);
    CHECK(limits.admit(ip("2001:db8:1:2::99")).second == admission::refusal::address_full);
    CHECK(limits.admit(ip("2001:db8:1:3::10")).second == admission::refusal::none);
    // The v4 address whose bytes start like a v6 one is another key.
    admission mixed(0, 1);
    auto [v4, r2] = mixed.admit(ip("32.1.13.184"));
    CHECK(mixed.admit(ip("2001:db8::1")).second == admission::refusal::none);
}
