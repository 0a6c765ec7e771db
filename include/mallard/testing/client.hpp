// SPDX-License-Identifier: BSL-1.0
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

namespace mallard::testing {

/// Thrown by `client` when the server answers the upgrade with anything but 101.
class upgrade_refused : public std::runtime_error {
public:
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
    std::string data;
    mallard::opcode op = mallard::opcode::text;
};

namespace detail {
struct client_state;
} // namespace detail

/** A blocking WebSocket client for testing views, with a deadline on every call.

    It runs its own event loop only while one of its calls runs, so it can
    talk to a `mallard::server` running in the same process on other threads.

    @par Example
    @code
    mallard::testing::client c{srv.port(), "/ws/echo"};
    c.send_text("hello");
    REQUIRE(c.receive()->data == "You sent hello");
    c.close();
    REQUIRE(c.close_code() == mallard::close_code::normal);
    @endcode

    @par Thread safety
    One client is used from one thread at a time.
*/
class client {
public:
    using duration = std::chrono::milliseconds;

    /** Connects to 127.0.0.1:`port` and performs the opening handshake.

        @throws upgrade_refused when the server answers with another status.
        @throws std::system_error when the connection fails or `timeout` passes.
    */
    client(unsigned short port, std::string target, duration timeout = std::chrono::seconds{5})
        : client("127.0.0.1", port, std::move(target), timeout)
    {
    }

    /// Connects to `host`:`port`; see the constructor above.
    MALLARD_DECL client(std::string const& host, unsigned short port, std::string target,
                        duration timeout = std::chrono::seconds{5});

    MALLARD_DECL ~client();
    client(client const&) = delete;
    client& operator=(client const&) = delete;

    /// Sends a text message as one frame.
    /// @throws std::runtime_error when it is not sent within `timeout`.
    MALLARD_DECL void send_text(std::string_view text, duration timeout = std::chrono::seconds{5});

    /// Sends a binary message as one frame; see `send_text`.
    MALLARD_DECL void send_binary(std::string_view data,
                                  duration timeout = std::chrono::seconds{5});

    /** Writes `bytes` to the socket as they are, beneath the WebSocket framing:
        for tests of what a misbehaving client sends.
        @throws std::system_error when the write fails.
    */
    MALLARD_DECL void send_raw(std::string_view bytes);

    /** Waits for the next message.

        @return the message, or nothing when the connection closed (then
        `close_code()` and `close_text()` say how).
        @throws std::runtime_error when nothing arrives within `timeout`.
    */
    MALLARD_DECL std::optional<message> receive(duration timeout = std::chrono::seconds{5});

    /** Reads, discarding messages, until the server closes the connection.

        @return the close code the server sent, or `mallard::close_code::abnormal`
        when the TCP connection ended without a close frame.
        @throws std::runtime_error when it is still open after `timeout`.
    */
    MALLARD_DECL mallard::close_code wait_for_close(duration timeout = std::chrono::seconds{5});

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

    bool is_open() const noexcept { return !closed_; }
    /// How the connection closed; empty while it is open.
    std::optional<mallard::close_code> close_code() const noexcept { return close_code_; }
    /// The reason the server gave in its close frame, or what failed.
    std::string const& close_text() const noexcept { return close_text_; }

private:
    MALLARD_DECL bool run(bool& done, duration timeout);
    MALLARD_DECL bool try_receive_until(duration left);
    MALLARD_DECL void write(std::string_view data, bool text, duration timeout);
    MALLARD_DECL void record_close(error_code const& ec);

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
