// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_TCP_STREAM_HPP
#define MALLARD_DETAIL_TCP_STREAM_HPP

// Beast's TCP stream (with its timeouts) on the connection's own io_context
// executor, with a closing that lets the peer read our close frame.
//
// The executor is io_context's own type, not beast::tcp_stream's
// any_io_executor: every operation Beast composes above it copies the
// executor and tracks work on it, and a type-erased one costs a call through
// a table for each of those.
//
// After a WebSocket close frame, the server shuts down its sending side and
// must keep reading until the peer closes too: closing a socket that still
// has unread bytes makes the kernel answer with a reset, and the peer loses
// the close frame still waiting in its receive buffer (it sees 1006 where we
// sent 1009). Beast 1.81's own TCP teardown stops after the first successful
// read, so a peer still sending the rest of an oversized message gets that
// reset. The teardown below reads until end of stream, bounded in time.
// Beast finds it by argument-dependent lookup on the stream type.

#include <mallard/detail/config.hpp>
#include <mallard/detail/tcp_socket.hpp>

#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <chrono>
#include <memory>
#include <utility>

namespace mallard::detail {

class tcp_stream
    : public beast::basic_stream<net::ip::tcp, executor_type, beast::unlimited_rate_policy> {
public:
    using basic_stream::basic_stream;

    /// How long the closing side keeps draining what the peer still sends.
    static constexpr std::chrono::seconds linger_time{3};

    template <class Handler>
    friend void async_teardown(beast::role_type role, tcp_stream& stream, Handler&& handler)
    {
        net::async_compose<Handler, void(error_code)>(lingering_close{stream, role}, handler,
                                                      stream);
    }

    friend void teardown(beast::role_type role, tcp_stream& stream, error_code& ec)
    {
        using beast::websocket::teardown;
        teardown(role, stream.socket(), ec);
    }

private:
    // Half-closes, discards input until the peer's end of stream (or the
    // linger time), then closes. The discard buffer lives on the heap because
    // the operation object moves between steps while a read is in flight.
    struct lingering_close {
        tcp_stream& stream;
        beast::role_type role;
        std::unique_ptr<char[]> discard{};
        bool started = false;

        static constexpr std::size_t discard_bytes = 4 * 1024; // many connections close at once

        template <class Self>
        void operator()(Self& self, error_code ec = {}, std::size_t = 0)
        {
            if (!started) {
                started = true;
                if (role == beast::role_type::server)
                    stream.socket().shutdown(net::socket_base::shutdown_send, ec);
                if (ec)
                    return finish(self, ec);
                discard.reset(new char[discard_bytes]);
                stream.expires_after(linger_time);
            } else if (ec) {
                bool const peer_done = ec == net::error::eof;
                return finish(self, peer_done || ec == beast::error::timeout ? error_code{} : ec);
            }
            stream.async_read_some(net::buffer(discard.get(), discard_bytes), std::move(self));
        }

        template <class Self>
        void finish(Self& self, error_code ec)
        {
            error_code ignored;
            if (role == beast::role_type::client)
                stream.socket().shutdown(net::socket_base::shutdown_send, ignored);
            stream.socket().close(ignored);
            discard.reset();
            self.complete(ec);
        }
    };
};

} // namespace mallard::detail

#endif
