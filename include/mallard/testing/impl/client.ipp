// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_TESTING_IMPL_CLIENT_IPP
#define MALLARD_TESTING_IMPL_CLIENT_IPP

// The testing client on Beast's WebSocket client. Compiled once, by
// <mallard/src_testing.hpp>, in separate mode.

#include <mallard/testing/client.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <cstdint>
#include <system_error>
#include <utility>

namespace mallard::testing {

namespace detail {
struct client_state {
    net::io_context ioc{1};
    websocket::stream<beast::tcp_stream> ws{ioc};
};

inline void throw_if(error_code const& ec, char const* what)
{
    if (ec)
        throw std::system_error(ec, std::string("mallard::testing::client: ") + what);
}
} // namespace detail

MALLARD_DECL client::client(std::string const& host, unsigned short port, std::string target,
                            duration timeout)
    : state_(std::make_unique<detail::client_state>())
{
    auto& ws = state_->ws;
    error_code ec;
    net::ip::tcp::endpoint endpoint(net::ip::make_address(host), port);
    bool done = false;
    beast::get_lowest_layer(ws).async_connect(endpoint, [&](error_code e) {
        ec = e;
        done = true;
    });
    run(done, timeout);
    detail::throw_if(ec, "connect");
    beast::get_lowest_layer(ws).socket().set_option(net::ip::tcp::no_delay(true));
    websocket::response_type response;
    done = false;
    ws.async_handshake(response, host + ":" + std::to_string(port), target, [&](error_code e) {
        ec = e;
        done = true;
    });
    run(done, timeout);
    if (ec && response.result_int() != 0 && response.result_int() != 101)
        throw upgrade_refused(response.result_int(), target);
    detail::throw_if(ec, "handshake");
    ws.auto_fragment(false);
    ws.read_message_max(0); // the server under test sets the limits
}

MALLARD_DECL client::~client() = default;

MALLARD_DECL void client::send_text(std::string_view text, duration timeout)
{
    write(text, true, timeout);
}

MALLARD_DECL void client::send_binary(std::string_view data, duration timeout)
{
    write(data, false, timeout);
}

MALLARD_DECL void client::send_raw(std::string_view bytes)
{
    net::write(beast::get_lowest_layer(state_->ws).socket(),
               net::buffer(bytes.data(), bytes.size()));
}

MALLARD_DECL std::optional<message> client::receive(duration timeout)
{
    if (closed_)
        return std::nullopt;
    beast::flat_buffer buffer;
    error_code ec;
    bool done = false;
    state_->ws.async_read(buffer, [&](error_code e, std::size_t) {
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
                   state_->ws.got_text() ? opcode::text : opcode::binary};
}

MALLARD_DECL mallard::close_code client::wait_for_close(duration timeout)
{
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_) {
        auto const left =
            std::chrono::duration_cast<duration>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !try_receive_until(left))
            throw std::runtime_error("mallard::testing::client::wait_for_close: still open after " +
                                     std::to_string(timeout.count()) + " ms");
    }
    return *close_code_;
}

MALLARD_DECL void client::close(mallard::close_code code, std::string_view reason,
                                duration timeout)
{
    if (closed_)
        return;
    error_code ec;
    bool done = false;
    state_->ws.async_close(
        websocket::close_reason(static_cast<websocket::close_code>(code), reason),
        [&](error_code e) {
            ec = e;
            done = true;
        });
    run(done, timeout);
    detail::throw_if(ec, "close");
    record_close(websocket::error::closed);
}

MALLARD_DECL void client::drop()
{
    error_code ignored;
    auto& socket = beast::get_lowest_layer(state_->ws).socket();
    socket.set_option(net::socket_base::linger(true, 0), ignored); // send a reset
    socket.close(ignored);
    closed_ = true;
    close_code_ = mallard::close_code::abnormal;
}

MALLARD_DECL void client::on_ping(std::function<void(std::string_view payload)> callback)
{
    state_->ws.control_callback(
        [callback = std::move(callback)](websocket::frame_type kind, beast::string_view payload) {
            if (kind == websocket::frame_type::ping)
                callback(std::string_view(payload.data(), payload.size()));
        });
}

MALLARD_DECL bool client::run(bool& done, duration timeout)
{
    auto& ioc = state_->ioc;
    ioc.restart();
    ioc.run_for(timeout);
    if (done)
        return true;
    error_code ignored;
    beast::get_lowest_layer(state_->ws).socket().close(ignored);
    ioc.restart();
    ioc.run_for(std::chrono::seconds{1});
    if (!done)
        throw std::runtime_error("mallard::testing::client: a cancelled operation did not end");
    return false;
}

MALLARD_DECL bool client::try_receive_until(duration left)
{
    try {
        (void)receive(left);
        return true;
    } catch (std::runtime_error const&) {
        return false;
    }
}

MALLARD_DECL void client::write(std::string_view data, bool text, duration timeout)
{
    error_code ec;
    bool done = false;
    state_->ws.text(text);
    state_->ws.async_write(net::buffer(data.data(), data.size()), [&](error_code e, std::size_t) {
        ec = e;
        done = true;
    });
    if (!run(done, timeout))
        throw std::runtime_error("mallard::testing::client: send did not finish within " +
                                 std::to_string(timeout.count()) + " ms");
    detail::throw_if(ec, "send");
}

MALLARD_DECL void client::record_close(error_code const& ec)
{
    closed_ = true;
    if (ec == websocket::error::closed) {
        auto const& why = state_->ws.reason();
        close_code_ = why.code == websocket::close_code::none
                          ? mallard::close_code::no_status
                          : static_cast<mallard::close_code>(static_cast<std::uint16_t>(why.code));
        close_text_ = std::string(why.reason.data(), why.reason.size());
    } else {
        close_code_ = mallard::close_code::abnormal;
        close_text_ = ec.message();
    }
}

} // namespace mallard::testing

#endif
