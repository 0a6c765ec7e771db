// SPDX-License-Identifier: BSL-1.0
/// @file
/// The HTTP upgrade request a view is opened with.
#ifndef MALLARD_REQUEST_HPP
#define MALLARD_REQUEST_HPP

#include <mallard/detail/config.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>

#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mallard {

/** The HTTP upgrade request that opened a connection, with what routing found.

    Available in a view as `request()` from `on_open` on; it does not change
    for the life of the connection.

    @par Example
    @code
    // route "/ws/chat/<room>", URL "/ws/chat/lobby?name=ann%20b"
    request().path_param("room");      // "lobby"
    request().query_param("name");     // "ann b"
    request().header("User-Agent");    // as sent
    @endcode
*/
class request {
public:
    /// Path parameters by name, decoded.
    using param_map = std::map<std::string, std::string, std::less<>>;
    /// Query parameters in the order of the URL, names and values decoded; a
    /// name may come more than once.
    using query_list = std::vector<std::pair<std::string, std::string>>;

    request() = default;
    /// `peer`: the TCP peer; `client`: the client, when a trusted proxy
    /// forwarded the request (see `server_options::trusted_proxies`);
    /// unspecified means the same as `peer`.
    request(http::request<http::empty_body> message, std::string path, param_map path_params,
            query_list query_params, net::ip::address peer = {},
            std::optional<net::ip::address> client = {})
        : message_(std::move(message))
        , path_(std::move(path))
        , path_params_(std::move(path_params))
        , query_params_(std::move(query_params))
        , peer_address_(peer)
        , client_address_(client.value_or(peer))
    {
    }

    /// The request target as sent, e.g. "/ws/chat/lobby?name=ann%20b".
    std::string_view target() const noexcept { return message_.target(); }

    /// The percent-decoded path, e.g. "/ws/chat/lobby".
    std::string const& path() const noexcept { return path_; }

    /// The value of a path parameter named in the route's pattern.
    /// @throws std::out_of_range when the pattern has no such parameter.
    std::string const& path_param(std::string_view name) const
    {
        auto const found = path_params_.find(name);
        if (found == path_params_.end())
            throw std::out_of_range("mallard::request: the route has no path parameter \"" +
                                    std::string(name) + "\"");
        return found->second;
    }

    /// The value of an `<int:name>` path parameter as a number.
    /// @throws std::out_of_range when the pattern has no such parameter.
    std::int64_t path_param_int(std::string_view name) const
    {
        auto const& text = path_param(name);
        std::int64_t value = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc{} || ptr != text.data() + text.size())
            throw std::out_of_range("mallard::request: path parameter \"" + std::string(name) +
                                    "\" is not an integer; declare it as <int:" +
                                    std::string(name) + ">");
        return value;
    }

    /// Every path parameter, by name.
    param_map const& path_params() const noexcept { return path_params_; }

    /// The first percent-decoded value of a query parameter, if present.
    std::optional<std::string> query_param(std::string_view name) const
    {
        for (auto const& [key, value] : query_params_)
            if (key == name)
                return value;
        return std::nullopt;
    }

    /// Every query parameter, decoded, in order; keys may repeat.
    query_list const& query_params() const noexcept { return query_params_; }

    /// The value of a header, or an empty view when absent.
    std::string_view header(std::string_view name) const
    {
        auto const found = message_.find(name);
        return found == message_.end() ? std::string_view{} : std::string_view(found->value());
    }

    /// The whole HTTP request: method, target, version and headers.
    http::request<http::empty_body> const& message() const noexcept { return message_; }

    /// The address of the TCP peer: the client, or the proxy in front of it.
    net::ip::address const& peer_address() const noexcept { return peer_address_; }

    /// The client's address: the peer's, unless the peer is one of
    /// `server_options::trusted_proxies`; then the one it forwarded
    /// (`Forwarded` or `X-Forwarded-For`). Per-address limits count by it.
    net::ip::address const& client_address() const noexcept { return client_address_; }

private:
    http::request<http::empty_body> message_;
    std::string path_;
    param_map path_params_;
    query_list query_params_;
    net::ip::address peer_address_;
    net::ip::address client_address_;
};

} // namespace mallard

#endif
