// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_TESTING_IMPL_CLIENT_IPP
#define MALLARD_TESTING_IMPL_CLIENT_IPP

// The testing client on Beast's WebSocket client. Compiled once, by
// <mallard/src_testing.hpp>, in separate mode; the TLS stream's operations
// are in <mallard/testing/impl/tls_client.ipp>.

#include <mallard/testing/client.hpp>
#include <mallard/testing/detail/client_state.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/field.hpp>

#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace mallard::testing {

namespace detail {

class tcp_client_state final : public basic_client_state<beast::tcp_stream> {
public:

    void handshake(std::string const& host, std::string const& target,
                   client_options const& options, callback done) override
    {
        websocket_handshake(host, target, options, std::move(done));
    }
};

} // namespace detail

MALLARD_DECL client::client(unsigned short port, std::string target, client_options options)
    : client(std::make_unique<detail::tcp_client_state>(), port, std::move(target),
             std::move(options))
{
}

MALLARD_DECL client::client(std::unique_ptr<detail::client_state> state, unsigned short port,
                            std::string target, client_options options)
    : state_(std::move(state))
{
    auto& s = *state_;
    error_code ec;
    bool done = false;
    auto const set = [&](error_code e) {
        ec = e;
        done = true;
    };
    auto const deadline = std::chrono::steady_clock::now() + options.timeout;
    // Runs the step started last until it is done; both steps share the deadline.
    auto const finish = [&](char const* step) {
        auto const left =
            std::chrono::duration_cast<duration>(deadline - std::chrono::steady_clock::now());
        if (!run_until([&] { return done; }, left)) {
            abandon();
            throw std::system_error(make_error_code(std::errc::timed_out),
                                    std::string("mallard::testing::client: ") + step);
        }
    };
    s.socket().async_connect({net::ip::make_address(options.host), port}, set);
    finish("connect");
    detail::throw_if(ec, "connect");
    s.socket().set_option(net::ip::tcp::no_delay(true));
    done = false;
    s.handshake(options.host + ":" + std::to_string(port), target, options, set);
    finish("handshake");
    auto const status = s.response.result_int();
    if (ec == websocket::error::upgrade_declined)
        throw upgrade_refused(status, target);
    detail::throw_if(ec, "handshake");
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
    net::write(state_->socket(), net::buffer(bytes.data(), bytes.size()));
}

MALLARD_DECL std::optional<message> client::receive(duration timeout)
{
    auto& s = *state_;
    if (s.arrived.empty() && !closed_) {
        start_read();
        if (!run_until([&] { return !s.arrived.empty() || s.read_failed; }, timeout))
            throw std::runtime_error("mallard::testing::client::receive: nothing arrived within " +
                                     std::to_string(timeout.count()) + " ms");
    }
    if (!s.arrived.empty()) {
        auto next = std::move(s.arrived.front());
        s.arrived.pop_front();
        return next;
    }
    if (s.read_failed && !closed_)
        record_close();
    return std::nullopt;
}

MALLARD_DECL mallard::close_code client::wait_for_close(duration timeout)
{
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    auto const still_open = [&] {
        return std::runtime_error("mallard::testing::client::wait_for_close: still open after " +
                                  std::to_string(timeout.count()) + " ms");
    };
    while (!closed_) {
        auto const left =
            std::chrono::duration_cast<duration>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            throw still_open();
        try {
            (void)receive(left);
        } catch (std::runtime_error const&) { // nothing arrived in time
            throw still_open();
        }
    }
    return *close_code_;
}

MALLARD_DECL void client::ping(std::string_view payload, duration timeout)
{
    if (payload.size() > 125)
        throw std::invalid_argument("mallard::testing::client::ping: a ping's payload is at most "
                                    "125 bytes (RFC 6455 section 5.5), not " +
                                    std::to_string(payload.size()));
    auto& s = *state_;
    std::string const expected(payload);
    error_code ec;
    bool sent = false;
    s.ping(expected, [&](error_code e) {
        ec = e;
        sent = true;
    });
    bool ponged = false;
    // Reads on while it waits, keeping the messages, so that the pong is read
    // however many messages come before it.
    bool const finished = run_until(
        [&] {
            if (sent && !ec && !ponged)
                ponged = s.take_pong(expected);
            if (!s.reading && !s.read_failed && !ponged)
                start_read();
            return (sent && (ec || ponged)) || s.read_failed;
        },
        timeout);
    if (!sent) { // the handler still refers to this frame
        abandon();
        throw std::runtime_error("mallard::testing::client::ping: not sent within " +
                                 std::to_string(timeout.count()) + " ms");
    }
    detail::throw_if(ec, "ping");
    if (!finished)
        throw std::runtime_error("mallard::testing::client::ping: no pong within " +
                                 std::to_string(timeout.count()) + " ms");
    if (!ponged)
        throw std::runtime_error("mallard::testing::client::ping: the connection closed before the pong");
}

MALLARD_DECL void client::close(mallard::close_code code, std::string_view reason,
                                duration timeout)
{
    if (closed_)
        return;
    if (state_->read_failed) { // the server closed first, and a read saw it
        record_close();
        return;
    }
    error_code ec;
    bool done = false;
    state_->close(websocket::close_reason(static_cast<websocket::close_code>(code), reason),
                  [&](error_code e) {
                      ec = e;
                      done = true;
                  });
    if (!run_until([&] { return done; }, timeout)) {
        abandon();
        throw std::system_error(make_error_code(std::errc::timed_out),
                                "mallard::testing::client: close");
    }
    detail::throw_if(ec, "close");
    closed_ = true;
    auto const& why = state_->reason();
    close_code_ = detail::code_of(why);
    close_text_ = std::string(why.reason.data(), why.reason.size());
}

MALLARD_DECL void client::drop()
{
    error_code ignored;
    auto& socket = state_->socket();
    socket.set_option(net::socket_base::linger(true, 0), ignored); // send a reset
    socket.close(ignored);
    closed_ = true;
    close_code_ = mallard::close_code::abnormal;
}

MALLARD_DECL void client::on_ping(std::function<void(std::string_view payload)> callback)
{
    state_->ping_callback = std::move(callback);
}

MALLARD_DECL std::string client::subprotocol() const
{
    auto const value = state_->response[http::field::sec_websocket_protocol];
    return std::string(value.data(), value.size());
}

MALLARD_DECL bool client::compressed() const
{
    auto const value = state_->response[http::field::sec_websocket_extensions];
    return std::string_view(value.data(), value.size()).find("permessage-deflate") !=
           std::string_view::npos;
}

MALLARD_DECL std::string client::response_header(std::string_view name) const
{
    auto const value = state_->response[beast::string_view(name.data(), name.size())];
    return std::string(value.data(), value.size());
}

// Runs the event loop until `ready()` or `timeout`; whether `ready()`.
template <class Ready>
bool client::run_until(Ready const& ready, duration timeout)
{
    auto& ioc = state_->ioc;
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    ioc.restart();
    // Without it, the loop stops when its last handler has run, although
    // `ready()` may start more work (the next read) right after.
    auto const busy = net::make_work_guard(ioc);
    while (!ready())
        if (ioc.run_one_until(deadline) == 0)
            return ready();
    return true;
}

// Gives up on the connection after an operation did not finish in time: its
// handler refers to the caller's frame, so it must run before the caller
// returns. Closing the socket ends every operation on it.
MALLARD_DECL void client::abandon()
{
    error_code ignored;
    state_->socket().close(ignored);
    auto& ioc = state_->ioc;
    ioc.restart();
    ioc.run_for(std::chrono::seconds{1});
    if (!ioc.stopped())
        throw std::runtime_error("mallard::testing::client: a cancelled operation did not end");
    closed_ = true;
    close_code_ = mallard::close_code::abnormal;
    close_text_ = "timed out";
}

MALLARD_DECL void client::start_read()
{
    auto& s = *state_;
    if (s.reading || s.read_failed)
        return;
    s.reading = true;
    s.read([&s](error_code ec, bool text) {
        s.reading = false;
        if (ec) {
            s.read_failed = true;
            s.read_error = ec;
            return;
        }
        s.arrived.push_back(message{beast::buffers_to_string(s.buffer.data()),
                                    text ? opcode::text : opcode::binary});
        s.buffer.consume(s.buffer.size());
    });
}

MALLARD_DECL void client::write(std::string_view data, bool text, duration timeout)
{
    error_code ec;
    bool done = false;
    state_->write(net::buffer(data.data(), data.size()), text, [&](error_code e) {
        ec = e;
        done = true;
    });
    if (!run_until([&] { return done; }, timeout)) {
        abandon();
        throw std::runtime_error("mallard::testing::client: send did not finish within " +
                                 std::to_string(timeout.count()) + " ms");
    }
    detail::throw_if(ec, "send");
}

MALLARD_DECL void client::record_close()
{
    auto const& s = *state_;
    closed_ = true;
    if (s.read_error == websocket::error::closed) {
        auto const& why = s.reason();
        close_code_ = detail::code_of(why);
        close_text_ = std::string(why.reason.data(), why.reason.size());
    } else {
        close_code_ = mallard::close_code::abnormal;
        close_text_ = s.read_error.message();
    }
}

} // namespace mallard::testing

#endif
