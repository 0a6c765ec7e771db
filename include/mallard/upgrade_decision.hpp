// SPDX-License-Identifier: BSL-1.0
/// @file
/// A view's answer to an upgrade request: accept, with headers, or refuse.
#ifndef MALLARD_UPGRADE_DECISION_HPP
#define MALLARD_UPGRADE_DECISION_HPP

#include <mallard/detail/config.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/status.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace mallard {

/** A view's answer to an upgrade request, given before the 101 response.

    Returned by `websocket_view::on_upgrade`. Either accept, optionally with
    headers for the 101 response (a cookie, say), or refuse with any HTTP
    status, headers and body; a refusal ends the connection after the answer.

    @par Example
    @code
    co_return mallard::upgrade_decision::reject(mallard::http::status::unauthorized,
                                                "Wrong or missing token\n")
        .header(mallard::http::field::www_authenticate, "Bearer");
    @endcode
*/
class upgrade_decision {
public:
    /// Accepts; the same as `accept()`.
    upgrade_decision() = default;

    /// Goes on with the upgrade.
    static upgrade_decision accept() { return upgrade_decision{}; }

    /** Refuses the upgrade with `status` and `body` (sent as text/plain
        unless a Content-Type header is added).
        @throws std::invalid_argument for a status below 400, which would not
        be a refusal.
    */
    static upgrade_decision reject(http::status status, std::string body = {})
    {
        if (static_cast<unsigned>(status) < 400)
            throw std::invalid_argument("mallard::upgrade_decision::reject: status " +
                                        std::to_string(static_cast<unsigned>(status)) +
                                        " is not an error; refuse with a 4xx or 5xx status");
        upgrade_decision decision;
        decision.refusal_ = status;
        decision.body_ = std::move(body);
        return decision;
    }

    /// Adds a header to the 101 response, or to the refusal.
    upgrade_decision& header(http::field name, std::string_view value) &
    {
        headers_.insert(name, value);
        return *this;
    }
    /// Adds a header to a temporary decision, as in
    /// `return upgrade_decision::accept().header(...)`.
    upgrade_decision&& header(http::field name, std::string_view value) &&
    {
        return std::move(header(name, value));
    }
    /// Adds a header by name, for fields Beast has no enumerator for.
    upgrade_decision& header(std::string_view name, std::string_view value) &
    {
        headers_.insert(name, value);
        return *this;
    }
    /// Adds a header by name to a temporary decision.
    upgrade_decision&& header(std::string_view name, std::string_view value) &&
    {
        return std::move(header(name, value));
    }

    /// Whether the upgrade goes on.
    bool accepted() const noexcept { return !refusal_; }
    /// The refusal's status; 101 when accepted.
    http::status status() const noexcept
    {
        return refusal_.value_or(http::status::switching_protocols);
    }
    /// The refusal's body.
    std::string const& body() const noexcept { return body_; }
    /// The headers to add to the answer.
    http::fields const& headers() const noexcept { return headers_; }

private:
    std::optional<http::status> refusal_;
    std::string body_;
    http::fields headers_;
};

} // namespace mallard

#endif
