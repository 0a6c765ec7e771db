// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_HTTP_SUBPROTOCOL_HPP
#define MALLARD_DETAIL_HTTP_SUBPROTOCOL_HPP

// Subprotocol selection, RFC 6455 sections 4.1 and 4.2.2.

#include <mallard/detail/config.hpp>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace mallard::detail {

/// The first of `ours` (our order of preference) that the client offers in
/// its Sec-WebSocket-Protocol headers (one or more, comma-separated); empty
/// when none. Names compare exactly: they are case-sensitive tokens.
inline std::string select_subprotocol(http::request<http::empty_body> const& upgrade,
                                      std::vector<std::string> const& ours)
{
    if (ours.empty())
        return {};
    std::vector<std::string_view> offered;
    auto const [first, last] = upgrade.equal_range(http::field::sec_websocket_protocol);
    for (auto field = first; field != last; ++field)
        for (auto const token : http::token_list(field->value()))
            offered.emplace_back(token.data(), token.size());
    for (auto const& name : ours)
        for (auto const candidate : offered)
            if (candidate == name)
                return name;
    return {};
}

/// The names joined for a refusal's body: "a, b".
inline std::string list_subprotocols(std::vector<std::string> const& names)
{
    std::string joined;
    for (auto const& name : names) {
        if (!joined.empty())
            joined += ", ";
        joined += name;
    }
    return joined;
}

} // namespace mallard::detail

#endif
