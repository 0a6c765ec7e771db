// SPDX-License-Identifier: BSL-1.0
/// @file
/// A handle to one open connection, for sending to it from any thread.
#ifndef MALLARD_CONNECTION_HPP
#define MALLARD_CONNECTION_HPP

#include <mallard/close_reason.hpp>
#include <mallard/detail/config.hpp>
#include <mallard/detail/outbound_message.hpp>
#include <mallard/send_status.hpp>

#include <boost/asio/ip/address.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace mallard {

namespace detail {
class session_base;
}

class websocket_view;

/** A handle to one client connection, safe to keep and use from any thread.

    Get one from a view with `connection()`. It does not keep the connection
    open: once the client is gone every send answers `send_status::closed`.
    Sends never wait: the message goes into the recipient's queue (posted to
    its thread when called from another) and the recipient's route policy
    handles a recipient that cannot keep up.

    @par Thread safety
    Every member function may be called from any thread, concurrently.

    @par Example
    @code
    std::vector<mallard::connection> watchers;   // kept under your own lock
    for (auto& c : watchers)
        (void)c.send_text(payload);              // never blocks on a slow client
    @endcode
*/
class connection {
public:
    /// A handle to no connection: every send answers `closed`.
    connection() = default;

    /// Queues a text message (UTF-8 is the caller's promise).
    template <class Bytes>
        requires std::constructible_from<std::string, Bytes&&>
    send_status send_text(Bytes&& text) const
    {
        return send({detail::outbound_message::kind::text, std::string(std::forward<Bytes>(text)), {}});
    }

    /// Queues a text message whose bytes are shared with other recipients.
    send_status send_text(std::shared_ptr<std::string const> text) const
    {
        return send({detail::outbound_message::kind::text, {}, std::move(text)});
    }

    /// Queues a binary message.
    template <class Bytes>
        requires std::constructible_from<std::string, Bytes&&>
    send_status send_binary(Bytes&& data) const
    {
        return send({detail::outbound_message::kind::binary, std::string(std::forward<Bytes>(data)), {}});
    }

    /// Queues a binary message whose bytes are shared with other recipients.
    send_status send_binary(std::shared_ptr<std::string const> data) const
    {
        return send({detail::outbound_message::kind::binary, {}, std::move(data)});
    }

    /// Starts the closing handshake; see websocket_view::close.
    MALLARD_DECL void close(close_code code = close_code::normal, std::string reason = {}) const;

    /// Whether the connection is still open (it may close right after).
    MALLARD_DECL bool is_open() const noexcept;

    /// A number unique among this process's connections; 0 for no connection.
    MALLARD_DECL std::uint64_t id() const noexcept;

    /** Bytes queued for the client and not yet written (as uWebSockets'
        `getBufferedAmount`): what a slow client has not taken yet. Any
        thread; 0 once the connection is gone.
    */
    MALLARD_DECL std::size_t buffered_amount() const noexcept;

    /// The client's address (see `request::client_address`); unspecified
    /// once the connection is gone. Any thread.
    MALLARD_DECL boost::asio::ip::address client_address() const;

    /// The TCP peer's address: the client, or the proxy in front of it;
    /// unspecified once the connection is gone. Any thread.
    MALLARD_DECL boost::asio::ip::address peer_address() const;

    /// Handles compare equal when they refer to the same connection.
    friend bool operator==(connection const& a, connection const& b) noexcept
    {
        return !a.session_.owner_before(b.session_) && !b.session_.owner_before(a.session_);
    }

private:
    friend class websocket_view; // hands out handles to its own connection

    explicit connection(std::weak_ptr<detail::session_base> session) noexcept
        : session_(std::move(session))
    {
    }

    MALLARD_DECL send_status send(detail::outbound_message message) const;

    std::weak_ptr<detail::session_base> session_;
};

} // namespace mallard

#ifdef MALLARD_HEADER_ONLY
#include <mallard/impl/connection.ipp>
#endif

#endif
