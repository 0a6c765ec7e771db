// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_TESTING_DETAIL_CLIENT_STATE_HPP
#define MALLARD_TESTING_DETAIL_CLIENT_STATE_HPP

// The testing client's connection: its event loop, what it has received, and
// the Beast stream behind a few virtual functions, so that the client's logic
// is compiled once and only the stream's own operations once per kind of
// stream (TCP in <mallard/src_testing.hpp>, TLS in <mallard/src_tls.hpp>).
// Included by the compiled bodies only.

#include <mallard/testing/client.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace mallard::testing::detail {

struct client_state {
    using callback = std::function<void(error_code)>;

    net::io_context ioc{1};
    websocket::response_type response;

    // The one read in flight at a time, and where its message goes. A read
    // may stay in flight after a call returns (a receive that timed out, a
    // ping that got its pong): the next call waits for it.
    beast::flat_buffer buffer;
    bool reading = false;
    bool read_failed = false;
    error_code read_error;
    std::deque<message> arrived;

    std::function<void(std::string_view)> ping_callback;
    std::vector<std::string> pongs; // payloads of pongs not yet awaited

    virtual ~client_state() = default;

    virtual net::ip::tcp::socket& socket() = 0;
    // After the TCP connection: TLS (if any), then the WebSocket handshake.
    virtual void handshake(std::string const& host, std::string const& target,
                           client_options const& options, callback done) = 0;
    virtual void read(std::function<void(error_code, bool text)> done) = 0;
    virtual void write(net::const_buffer data, bool text, callback done) = 0;
    virtual void ping(std::string const& payload, callback done) = 0;
    virtual void close(websocket::close_reason const& why, callback done) = 0;
    virtual websocket::close_reason const& reason() const = 0;

    // Takes the pong with `payload`, if it came.
    bool take_pong(std::string const& payload)
    {
        auto it = std::find(pongs.begin(), pongs.end(), payload);
        if (it == pongs.end())
            return false;
        pongs.erase(it);
        return true;
    }
};

// The operations on a websocket::stream<Next>. Each kind of stream adds the
// handshake, with its own steps before WebSocket's (TLS's, for TLS).
template <class Next>
class basic_client_state : public client_state {
public:
    // The stream on this state's event loop; `args` follow the event loop
    // to the stream's constructor (the TLS context).
    template <class... Args>
    explicit basic_client_state(Args&&... args) : ws_(ioc, std::forward<Args>(args)...)
    {
        ws_.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
            std::string_view const text(payload.data(), payload.size());
            if (kind == websocket::frame_type::ping && ping_callback)
                ping_callback(text);
            else if (kind == websocket::frame_type::pong)
                pongs.emplace_back(text);
        });
    }

    net::ip::tcp::socket& socket() override { return beast::get_lowest_layer(ws_).socket(); }

    void read(std::function<void(error_code, bool text)> done) override
    {
        ws_.async_read(buffer, [this, done = std::move(done)](error_code ec, std::size_t) {
            done(ec, ws_.got_text());
        });
    }

    void write(net::const_buffer data, bool text, callback done) override
    {
        ws_.text(text);
        ws_.async_write(data, [done = std::move(done)](error_code ec, std::size_t) { done(ec); });
    }

    void ping(std::string const& payload, callback done) override
    {
        ws_.async_ping(websocket::ping_data(payload.c_str(), payload.size()), std::move(done));
    }

    void close(websocket::close_reason const& why, callback done) override
    {
        ws_.async_close(why, std::move(done));
    }

    websocket::close_reason const& reason() const override { return ws_.reason(); }

protected:
    // The WebSocket handshake, with what `options` offers and sends.
    void websocket_handshake(std::string const& host, std::string const& target,
                             client_options const& options, callback done)
    {
        ws_.set_option(websocket::stream_base::decorator(
            [options](websocket::request_type& request) {
                if (!options.subprotocols.empty()) {
                    std::string offer;
                    for (auto const& protocol : options.subprotocols)
                        offer += (offer.empty() ? "" : ", ") + protocol;
                    request.set(http::field::sec_websocket_protocol, offer);
                }
                for (auto const& [name, value] : options.headers)
                    request.insert(name, value);
            }));
        if (options.compression) {
            websocket::permessage_deflate deflate;
            deflate.client_enable = true;
            ws_.set_option(deflate);
        }
        ws_.async_handshake(response, host, target,
                            [this, done = std::move(done)](error_code ec) {
                                if (!ec) {
                                    ws_.auto_fragment(false);
                                    ws_.read_message_max(0); // the server under test sets the limits
                                }
                                done(ec);
                            });
    }

    websocket::stream<Next> ws_;
};

// The code of a close frame as mallard names it; no_status for a frame without one.
inline mallard::close_code code_of(websocket::close_reason const& why)
{
    return why.code == websocket::close_code::none
               ? mallard::close_code::no_status
               : static_cast<mallard::close_code>(static_cast<std::uint16_t>(why.code));
}

inline void throw_if(error_code const& ec, char const* what)
{
    if (ec)
        throw std::system_error(ec, std::string("mallard::testing::client: ") + what);
}

} // namespace mallard::testing::detail

#endif
