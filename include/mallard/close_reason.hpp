// SPDX-License-Identifier: BSL-1.0
/// @file
/// Close codes (RFC 6455 section 7.4) and the reason a connection closed.
#ifndef MALLARD_CLOSE_REASON_HPP
#define MALLARD_CLOSE_REASON_HPP

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

namespace mallard {

/** Close status codes.

    Any value in 3000-4999 may also be used (`close_code{4000}`): 3000-3999
    are registered with IANA, 4000-4999 are for private use by applications.

    @see RFC 6455 section 7.4
*/
enum class close_code : std::uint16_t {
    normal = 1000,              ///< the purpose of the connection is fulfilled
    going_away = 1001,          ///< server shutdown, receive timeout, page left
    protocol_error = 1002,      ///< the peer broke RFC 6455
    unsupported_data = 1003,    ///< a message type the endpoint cannot accept
    no_status = 1005,           ///< received without a code; never sent
    abnormal = 1006,            ///< the TCP connection ended without a close frame; never sent
    invalid_payload = 1007,     ///< text that is not UTF-8
    policy_violation = 1008,    ///< e.g. a client too slow to keep up
    message_too_big = 1009,     ///< a frame or message over the route's limit
    mandatory_extension = 1010, ///< sent by clients only
    internal_error = 1011,      ///< a handler threw
    service_restart = 1012,     ///< the service is restarting
    try_again_later = 1013,     ///< temporarily overloaded
    /// 3000 (registered with IANA as "Unauthorized"): the expiry set with
    /// `expire_at` passed without being extended. mallard's own codes in
    /// 3000-3499 mean "reconnect" (here: with fresh credentials); 3500-3999
    /// are left to views for "do not reconnect".
    expired = 3000,
    /// 3008 (registered with IANA as "Timeout"): the route's `max_lifetime`
    /// was reached; reconnect.
    lifetime_reached = 3008,
};

/** Whether `code` may be put in a close frame that we send.

    @see RFC 6455 section 7.4.1 and 7.4.2
*/
constexpr bool is_sendable(close_code code) noexcept
{
    auto const value = static_cast<std::uint16_t>(code);
    if (value >= 3000 && value <= 4999)
        return true;
    switch (code) {
    case close_code::normal:
    case close_code::going_away:
    case close_code::protocol_error:
    case close_code::unsupported_data:
    case close_code::invalid_payload:
    case close_code::policy_violation:
    case close_code::message_too_big:
    case close_code::internal_error:
    case close_code::service_restart:
    case close_code::try_again_later:
        return true;
    default:
        return false;
    }
}

/// Why a connection ended, as seen from the server.
enum class close_cause {
    peer_closed,      ///< the client sent a close frame
    server_closed,    ///< the view called `close()`
    receive_timeout,  ///< nothing arrived for `receive_timeout`; closed with 1001
    message_too_big,  ///< a frame or message over the limit; closed with 1009
    invalid_payload,  ///< text that is not UTF-8; closed with 1007
    protocol_error,   ///< any other RFC 6455 violation; closed with 1002
    slow_consumer,    ///< the send queue passed its bound; closed with 1008
    handler_error,    ///< a callback or spawned task threw; closed with 1011
    network_error,    ///< reset, EOF or a closing handshake that never finished
    shutdown,         ///< the server is stopping; closed with 1001
    send_timeout,     ///< what was queued for the client made no progress for
                      ///< `send_timeout`; closed with 1008
    memory_budget,    ///< among the largest holders while the server was over
                      ///< its `memory_budget`; closed with 1013
    rate_limit,       ///< sent faster than its route's `receive_rate` allows,
                      ///< with the `close` action; closed with 1008
    expired,          ///< the expiry set with `expire_at` passed; closed with 3000
    max_lifetime,     ///< the route's `max_lifetime` was reached; closed with 3008
    pong_timeout,     ///< a ping went unanswered for `pong_timeout`; closed with 1001
};

/// A short lower-case name for `cause`, for logs.
constexpr std::string_view to_string(close_cause cause) noexcept
{
    switch (cause) {
    case close_cause::peer_closed: return "peer closed";
    case close_cause::server_closed: return "server closed";
    case close_cause::receive_timeout: return "receive timeout";
    case close_cause::message_too_big: return "message too big";
    case close_cause::invalid_payload: return "invalid payload";
    case close_cause::protocol_error: return "protocol error";
    case close_cause::slow_consumer: return "slow consumer";
    case close_cause::handler_error: return "handler error";
    case close_cause::network_error: return "network error";
    case close_cause::shutdown: return "shutdown";
    case close_cause::send_timeout: return "send timeout";
    case close_cause::memory_budget: return "memory budget";
    case close_cause::rate_limit: return "rate limit";
    case close_cause::expired: return "expired";
    case close_cause::max_lifetime: return "max lifetime";
    case close_cause::pong_timeout: return "pong timeout";
    }
    return "unknown";
}

/** What `on_close` is told about the end of a connection. */
struct close_reason {
    /// The code in the close frame that ended the connection: the peer's when
    /// the peer closed first, ours otherwise; `abnormal` when none was exchanged.
    close_code code = close_code::abnormal;
    /// The reason text that went with `code` (at most 123 bytes).
    std::string reason;
    /// Who or what ended the connection.
    close_cause cause = close_cause::network_error;
    /// The transport or protocol error behind `cause`, when there was one.
    boost::system::error_code error;
};

} // namespace mallard

#endif
