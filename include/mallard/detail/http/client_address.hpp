// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_HTTP_CLIENT_ADDRESS_HPP
#define MALLARD_DETAIL_HTTP_CLIENT_ADDRESS_HPP

// Who the client is when a proxy stands between it and the server: the
// address in Forwarded (RFC 7239) or X-Forwarded-For, believed only when the
// TCP peer is one of server_options::trusted_proxies, and read from the right
// (the end the trusted proxies wrote) to the first address that is not one
// of them. Without I/O; tests/unit drives it.

#include <mallard/detail/config.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/fields.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mallard::detail {

/// An IPv4 address that a dual-stack socket reports as ::ffff:a.b.c.d, as v4.
inline net::ip::address plain_address(net::ip::address const& address)
{
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
    return address;
}

/// The networks whose forwarding headers are believed.
class trusted_networks {
public:
    trusted_networks() = default;

    /// Parses addresses ("10.0.0.1", "::1") and networks ("10.0.0.0/8",
    /// "fd00::/8"). @throws std::invalid_argument naming the bad entry.
    explicit trusted_networks(std::vector<std::string> const& entries)
    {
        for (auto const& entry : entries) {
            error_code ec;
            auto const slash = entry.find('/');
            auto const host = net::ip::make_address(entry.substr(0, slash), ec);
            if (ec)
                throw bad(entry);
            if (slash == std::string::npos) {
                if (host.is_v4())
                    v4_.push_back(net::ip::network_v4(host.to_v4(), 32));
                else
                    v6_.push_back(net::ip::network_v6(host.to_v6(), 128));
                continue;
            }
            if (host.is_v4()) {
                auto const network = net::ip::make_network_v4(entry, ec);
                if (ec)
                    throw bad(entry);
                v4_.push_back(network);
            } else {
                auto const network = net::ip::make_network_v6(entry, ec);
                if (ec)
                    throw bad(entry);
                v6_.push_back(network);
            }
        }
    }

    bool empty() const noexcept { return v4_.empty() && v6_.empty(); }

    bool contains(net::ip::address const& raw) const
    {
        auto const address = plain_address(raw);
        if (address.is_v4()) {
            for (auto const& network : v4_)
                if (net::ip::network_v4(address.to_v4(), 32).is_subnet_of(network) ||
                    (network.network() == address.to_v4() && network.prefix_length() == 32))
                    return true;
            return false;
        }
        for (auto const& network : v6_)
            if (net::ip::network_v6(address.to_v6(), 128).is_subnet_of(network) ||
                (network.network() == address.to_v6() && network.prefix_length() == 128))
                return true;
        return false;
    }

private:
    static std::invalid_argument bad(std::string const& entry)
    {
        return std::invalid_argument(
            "mallard::server_options: trusted_proxies has \"" + entry +
            "\", which is not an IP address or network; write e.g. \"10.0.0.1\" or "
            "\"10.0.0.0/8\"");
    }

    std::vector<net::ip::network_v4> v4_;
    std::vector<net::ip::network_v6> v6_;
};

namespace client_address_parts {

inline std::string_view trim(std::string_view text)
{
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
    return text;
}

/// An address as a forwarding header writes it: "192.0.2.1", "192.0.2.1:80",
/// "[2001:db8::1]", "[2001:db8::1]:80", "2001:db8::1", quoted or not.
inline std::optional<net::ip::address> parse_node(std::string_view node)
{
    node = trim(node);
    if (node.size() >= 2 && node.front() == '"' && node.back() == '"')
        node = node.substr(1, node.size() - 2);
    if (!node.empty() && node.front() == '[') {
        auto const close = node.find(']');
        if (close == std::string_view::npos)
            return std::nullopt;
        node = node.substr(1, close - 1);
    } else if (node.find(':') == node.rfind(':') && node.find(':') != std::string_view::npos) {
        node = node.substr(0, node.find(':')); // IPv4 with a port
    }
    error_code ec;
    auto const address = net::ip::make_address(node, ec);
    if (ec)
        return std::nullopt; // "unknown", an obfuscated "_node", garbage
    return plain_address(address);
}

/// The hops a header lists, nearest the client first; an entry that is no
/// address is kept as nothing.
inline void append_hops(std::vector<std::optional<net::ip::address>>& hops,
                        std::string_view value, bool rfc7239)
{
    while (!value.empty()) {
        auto const comma = value.find(',');
        auto element = value.substr(0, comma);
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        if (!rfc7239) {
            hops.push_back(parse_node(element));
            continue;
        }
        // forwarded-element: pairs separated by ';', the hop in "for=".
        std::optional<net::ip::address> hop;
        while (!element.empty()) {
            auto const semicolon = element.find(';');
            auto const pair = trim(element.substr(0, semicolon));
            element = semicolon == std::string_view::npos ? std::string_view{}
                                                          : element.substr(semicolon + 1);
            if (pair.size() > 4 && beast::iequals(pair.substr(0, 4), "for="))
                hop = parse_node(pair.substr(4));
        }
        hops.push_back(hop);
    }
}

} // namespace client_address_parts

/** The client's address: `peer` itself, unless `peer` is a trusted proxy;
    then the nearest hop, reading `Forwarded` (or, without it,
    `X-Forwarded-For`) from the right, that is not a trusted proxy. A hop
    that is no address ends the reading at the last trusted one: what lies
    beyond it cannot be believed.
*/
inline net::ip::address client_address(net::ip::address const& peer,
                                       beast::http::fields const& headers,
                                       trusted_networks const& trusted)
{
    auto client = plain_address(peer);
    if (trusted.empty() || !trusted.contains(client))
        return client;
    std::vector<std::optional<net::ip::address>> hops;
    bool const rfc7239 = headers.count(beast::http::field::forwarded) != 0;
    for (auto const& field : headers)
        if (rfc7239 ? field.name() == beast::http::field::forwarded
                    : beast::iequals(field.name_string(), "X-Forwarded-For"))
            client_address_parts::append_hops(hops, field.value(), rfc7239);
    for (auto hop = hops.rbegin(); hop != hops.rend(); ++hop) {
        if (!*hop)
            return client;
        client = **hop;
        if (!trusted.contains(client))
            return client;
    }
    return client;
}

} // namespace mallard::detail

#endif
