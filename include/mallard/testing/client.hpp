// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_TESTING_CLIENT_HPP
#define MALLARD_TESTING_CLIENT_HPP

#include <mallard/close_reason.hpp>
#include <mallard/detail/config.hpp>
#include <mallard/opcode.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

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
    /// The HTTP status of the server's answer, e.g. 404.
    unsigned status() const noexcept { return status_; }

private:
    unsigned status_;
};

/// A message as the client received it.
struct message {
    std::string data;
    mallard::opcode op = mallard::opcode::text;
};

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

    client(std::string const& host, unsigned short port, std::string target,
           duration timeout = std::chrono::seconds{5})
        : ws_(ioc_)
    {
        error_code ec;
        net::ip::tcp::endpoint endpoint(net::ip::make_address(host), port);
        bool done = false;
        beast::get_lowest_layer(ws_).async_connect(endpoint, [&](error_code e) {
            ec = e;
            done = true;
        });
        run(done, timeout);
        throw_if(ec, "connect");
        beast::get_lowest_layer(ws_).socket().set_option(net::ip::tcp::no_delay(true));
        websocket::response_type response;
        done = false;
        ws_.async_handshake(response, host + ":" + std::to_string(port), target,
                            [&](error_code e) {
                                ec = e;
                                done = true;
                            });
        run(done, timeout);
        if (ec && response.result_int() != 0 && response.result_int() != 101)
            throw upgrade_refused(response.result_int(), target);
        throw_if(ec, "handshake");
        ws_.auto_fragment(false);
        ws_.read_message_max(0); // the server under test sets the limits
    }

    /// Sends a text message; throws std::system_error on failure.
    void send_text(std::string_view text, duration timeout = std::chrono::seconds{5})
    {
        write(text, true, timeout);
    }

    /// Sends a binary message; throws std::system_error on failure.
    void send_binary(std::string_view data, duration timeout = std::chrono::seconds{5})
    {
        write(data, false, timeout);
    }

    /** Waits for the next message.

        @return the message, or nothing when the connection closed (then
        `close_code()` and `close_text()` say how).
        @throws std::runtime_error when nothing arrives within `timeout`.
    */
    std::optional<message> receive(duration timeout = std::chrono::seconds{5})
    {
        if (closed_)
            return std::nullopt;
        beast::flat_buffer buffer;
        error_code ec;
        bool done = false;
        ws_.async_read(buffer, [&](error_code e, std::size_t) {
            ec = e;
            done = true;
        });
        if (!run(done, timeout))
            throw std::runtime_error("mallard::testing::client::receive: nothing arrived within " +
                                     std::to_string(timeout.count()) + " ms");
        if (ec) {
            record_close(ec);
            return std::nullopt;
        }
        return message{beast::buffers_to_string(buffer.data()),
                       ws_.got_text() ? opcode::text : opcode::binary};
    }

    /** Reads, discarding messages, until the server closes the connection.

        @return the close code the server sent, or `mallard::close_code::abnormal`
        when the TCP connection ended without a close frame.
        @throws std::runtime_error when it is still open after `timeout`.
    */
    mallard::close_code wait_for_close(duration timeout = std::chrono::seconds{5})
    {
        auto const deadline = std::chrono::steady_clock::now() + timeout;
        while (!closed_) {
            auto const left = std::chrono::duration_cast<duration>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !try_receive_until(left))
                throw std::runtime_error(
                    "mallard::testing::client::wait_for_close: still open after " +
                    std::to_string(timeout.count()) + " ms");
        }
        return *close_code_;
    }

    /// Starts the closing handshake and waits for the server's answer.
    void close(mallard::close_code code = mallard::close_code::normal, std::string_view reason = {},
               duration timeout = std::chrono::seconds{5})
    {
        if (closed_)
            return;
        error_code ec;
        bool done = false;
        ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(code), reason),
                        [&](error_code e) {
                            ec = e;
                            done = true;
                        });
        run(done, timeout);
        throw_if(ec, "close");
        // Beast's close reads up to the server's close frame before it completes.
        record_close(websocket::error::closed);
    }

    /// Ends the TCP connection without a closing handshake, as a crashed client would.
    void drop()
    {
        error_code ignored;
        auto& socket = beast::get_lowest_layer(ws_).socket();
        socket.set_option(net::socket_base::linger(true, 0), ignored); // send a reset
        socket.close(ignored);
        closed_ = true;
        close_code_ = mallard::close_code::abnormal;
    }

    /// Whether no close has been seen yet.
    bool is_open() const noexcept { return !closed_; }
    /// The server's close code, once the connection has closed.
    std::optional<mallard::close_code> close_code() const noexcept { return close_code_; }
    /// The server's close reason text.
    std::string const& close_text() const noexcept { return close_text_; }

    /// The underlying Beast stream, for what this client does not offer.
    websocket::stream<beast::tcp_stream>& stream() noexcept { return ws_; }
    /// The event loop that the stream's operations need to complete.
    net::io_context& context() noexcept { return ioc_; }

private:
    // Runs the loop until `done` or the deadline; on the deadline cancels the
    // operation (the connection is unusable afterwards) and returns false.
    bool run(bool& done, duration timeout)
    {
        ioc_.restart();
        ioc_.run_for(timeout);
        if (done)
            return true;
        error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        ioc_.restart();
        ioc_.run_for(std::chrono::seconds{1});
        if (!done)
            throw std::runtime_error("mallard::testing::client: a cancelled operation did not end");
        return false;
    }

    bool try_receive_until(duration left)
    {
        try {
            (void)receive(left);
            return true;
        } catch (std::runtime_error const&) {
            return false;
        }
    }

    void write(std::string_view data, bool text, duration timeout)
    {
        error_code ec;
        bool done = false;
        ws_.text(text);
        ws_.async_write(net::buffer(data.data(), data.size()), [&](error_code e, std::size_t) {
            ec = e;
            done = true;
        });
        if (!run(done, timeout))
            throw std::runtime_error("mallard::testing::client: send did not finish within " +
                                     std::to_string(timeout.count()) + " ms");
        throw_if(ec, "send");
    }

    void record_close(error_code const& ec)
    {
        closed_ = true;
        if (ec == websocket::error::closed) {
            auto const& why = ws_.reason();
            close_code_ = why.code == websocket::close_code::none
                              ? mallard::close_code::no_status
                              : static_cast<mallard::close_code>(
                                    static_cast<std::uint16_t>(why.code));
            close_text_ = std::string(why.reason.data(), why.reason.size());
        } else {
            close_code_ = mallard::close_code::abnormal;
            close_text_ = ec.message();
        }
    }

    static void throw_if(error_code const& ec, char const* what)
    {
        if (ec)
            throw std::system_error(ec, std::string("mallard::testing::client: ") + what);
    }

    net::io_context ioc_{1};
    websocket::stream<beast::tcp_stream> ws_;
    bool closed_ = false;
    std::optional<mallard::close_code> close_code_;
    std::string close_text_;
};

} // namespace mallard::testing

#endif
