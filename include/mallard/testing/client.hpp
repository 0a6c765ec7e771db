// SPDX-License-Identifier: BSL-1.0
/// @file
/// A blocking WebSocket client for tests of views.
#ifndef MALLARD_TESTING_CLIENT_HPP
#define MALLARD_TESTING_CLIENT_HPP

#include <mallard/close_reason.hpp>
#include <mallard/detail/config.hpp>
#include <mallard/opcode.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mallard::testing {

/// Thrown by `client` when the server answers the upgrade with anything but 101.
class upgrade_refused : public std::runtime_error {
public:
    /// An exception for the refusal of an upgrade to `target` with `status`.
    upgrade_refused(unsigned status, std::string const& target)
        : std::runtime_error("mallard::testing::client: upgrade to " + target +
                             " refused with HTTP " + std::to_string(status))
        , status_(status)
    {
    }
    /// The HTTP status the server answered with.
    unsigned status() const noexcept { return status_; }

private:
    unsigned status_;
};

/// A message received by `client`.
struct message {
    /// The payload: UTF-8 text for `opcode::text`, any bytes for `opcode::binary`.
    std::string data;
    /// Whether the message was text or binary.
    mallard::opcode op = mallard::opcode::text;
};

/// What `client` offers and sends with its upgrade request.
struct client_options {
    /// The address to connect to. Default the IPv4 loopback.
    std::string host = "127.0.0.1";
    /// Bounds connecting and the opening handshake (TLS included). Default 5 s.
    std::chrono::milliseconds timeout{5000};
    /// Subprotocols to offer in `Sec-WebSocket-Protocol`, in the client's
    /// order of preference; `client::subprotocol()` tells which one the
    /// server chose. Default none.
    std::vector<std::string> subprotocols{};
    /// More request headers as (name, value), such as `Origin`, `Cookie` or
    /// `Authorization`. A name may come twice. Default none.
    std::vector<std::pair<std::string, std::string>> headers{};
    /// Offer permessage-deflate (RFC 7692); `client::compressed()` tells
    /// whether the server took it. The client then inflates what the server
    /// compresses, and compresses what it sends. Default off.
    bool compression = false;
};

namespace detail {
struct client_state;
} // namespace detail

/** A blocking WebSocket client for testing views, with a deadline on every call.

    It runs its own event loop only while one of its calls runs, so it can
    talk to a `mallard::server` running in the same process on other threads.
    `mallard::testing::tls_client` (`<mallard/testing/tls_client.hpp>`) is
    the same client over wss://.

    @par Example
    @code
    mallard::testing::client c{srv.port(), "/ws/echo"};
    c.send_text("hello");
    REQUIRE(c.receive()->data == "You sent hello");
    c.close();
    REQUIRE(c.close_code() == mallard::close_code::normal);

    mallard::testing::client chat{srv.port(), "/ws/chat",
                                  {.subprotocols = {"chat.v2", "chat.v1"},
                                   .headers = {{"Origin", "https://example.com"}},
                                   .compression = true}};
    REQUIRE(chat.subprotocol() == "chat.v2");
    @endcode

    @par Thread safety
    One client is used from one thread at a time.
*/
class client {
public:
    /// The unit of every deadline.
    using duration = std::chrono::milliseconds;

    /** Connects to 127.0.0.1:`port` and performs the opening handshake.

        @throws upgrade_refused when the server answers with another status.
        @throws std::system_error when the connection fails or `timeout` passes.
    */
    client(unsigned short port, std::string target, duration timeout = std::chrono::seconds{5})
        : client(port, std::move(target), client_options{.timeout = timeout})
    {
    }

    /// Connects to `host`:`port`; see the constructor above.
    client(std::string const& host, unsigned short port, std::string target,
           duration timeout = std::chrono::seconds{5})
        : client(port, std::move(target), client_options{.host = host, .timeout = timeout})
    {
    }

    /** Connects to `options.host`:`port` and performs the opening handshake
        with what `options` offers and sends.

        @throws upgrade_refused when the server answers with another status.
        @throws std::system_error when the connection fails or
        `options.timeout` passes.
    */
    MALLARD_DECL client(unsigned short port, std::string target, client_options options);

    MALLARD_DECL virtual ~client();
    client(client const&) = delete;
    client& operator=(client const&) = delete;

    /// Sends a text message as one frame.
    /// @throws std::runtime_error when it is not sent within `timeout`.
    MALLARD_DECL void send_text(std::string_view text, duration timeout = std::chrono::seconds{5});

    /// Sends a binary message as one frame; see `send_text`.
    MALLARD_DECL void send_binary(std::string_view data,
                                  duration timeout = std::chrono::seconds{5});

    /** Writes `bytes` to the socket as they are, beneath the WebSocket framing:
        for tests of what a misbehaving client sends. Not over TLS.
        @throws std::system_error when the write fails.
    */
    MALLARD_DECL void send_raw(std::string_view bytes);

    /** Waits for the next message.

        @return the message, or nothing when the connection closed (then
        `close_code()` and `close_text()` say how).
        @throws std::runtime_error when nothing arrives within `timeout`; the
        connection stays open, and a later call gets what arrives.
    */
    MALLARD_DECL std::optional<message> receive(duration timeout = std::chrono::seconds{5});

    /** Reads, discarding messages, until the server closes the connection.

        @return the close code the server sent, or `mallard::close_code::abnormal`
        when the TCP connection ended without a close frame.
        @throws std::runtime_error when it is still open after `timeout`.
    */
    MALLARD_DECL mallard::close_code wait_for_close(duration timeout = std::chrono::seconds{5});

    /** Sends a ping with `payload` (at most 125 bytes) and waits for the
        server's pong with the same payload. Messages that arrive meanwhile
        are kept for `receive`.

        @throws std::invalid_argument when `payload` is over 125 bytes.
        @throws std::runtime_error when no such pong arrives within `timeout`,
        or the connection closes first.
    */
    MALLARD_DECL void ping(std::string_view payload = {},
                           duration timeout = std::chrono::seconds{5});

    /// Performs the closing handshake with `code` and `reason`.
    /// @throws std::system_error when it fails or `timeout` passes.
    MALLARD_DECL void close(mallard::close_code code = mallard::close_code::normal,
                            std::string_view reason = {},
                            duration timeout = std::chrono::seconds{5});

    /// Cuts the connection with a TCP reset, without a close frame.
    MALLARD_DECL void drop();

    /// Calls `callback` with the payload of every ping the server sends, while
    /// a call of this client reads; the client still answers each with a pong.
    MALLARD_DECL void on_ping(std::function<void(std::string_view payload)> callback);

    /// The subprotocol the server chose among those offered; empty for none.
    MALLARD_DECL std::string subprotocol() const;

    /// Whether permessage-deflate is on: offered and accepted.
    MALLARD_DECL bool compressed() const;

    /// A header of the server's 101 response, by name (any case); empty
    /// when it has none.
    MALLARD_DECL std::string response_header(std::string_view name) const;

    /// Whether the connection is open: no close frame or failure yet.
    bool is_open() const noexcept { return !closed_; }
    /// How the connection closed; empty while it is open.
    std::optional<mallard::close_code> close_code() const noexcept { return close_code_; }
    /// The reason the server gave in its close frame, or what failed.
    std::string const& close_text() const noexcept { return close_text_; }

protected:
    /// Connects through `state`'s stream; for `tls_client`.
    MALLARD_DECL client(std::unique_ptr<detail::client_state> state, unsigned short port,
                        std::string target, client_options options);

private:
    template <class Ready>
    bool run_until(Ready const& ready, duration timeout);
    MALLARD_DECL void abandon();
    MALLARD_DECL void start_read();
    MALLARD_DECL void write(std::string_view data, bool text, duration timeout);
    MALLARD_DECL void record_close();

    std::unique_ptr<detail::client_state> state_; // the event loop and the Beast stream
    bool closed_ = false;
    std::optional<mallard::close_code> close_code_;
    std::string close_text_;
};

} // namespace mallard::testing

#ifdef MALLARD_HEADER_ONLY
#include <mallard/testing/impl/client.ipp>
#endif

#endif
