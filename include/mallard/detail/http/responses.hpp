// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_HTTP_RESPONSES_HPP
#define MALLARD_DETAIL_HTTP_RESPONSES_HPP

// Plain HTTP answers written before (or instead of) a WebSocket upgrade, on
// any stream: a TCP socket or TLS over one.

#include <mallard/detail/config.hpp>
#include <mallard/task.hpp>

#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <string>
#include <utility>

namespace mallard::detail {

inline constexpr char server_header[] = "mallard/0.1";

/// Half-closes the connection after a final answer: the client reads the
/// answer to its end, then sees the end of the stream.
template <class Stream>
void end_of_answers(Stream& stream)
{
    error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(net::socket_base::shutdown_send, ignored);
}

/// Writes a plain HTTP response; ends the connection unless `keep_alive`.
/// Returns whether to read another request.
template <class Stream, class Body>
task<bool> respond(Stream& stream, http::response<Body>& res, bool keep_alive)
{
    res.set(http::field::server, server_header);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    auto [ec, bytes] = co_await http::async_write(stream, res, use_tuple);
    if (ec || !keep_alive) {
        end_of_answers(stream);
        co_return false;
    }
    co_return true;
}

/// Answers with a short text and `status`; returns whether to read another request.
template <class Stream>
task<bool> respond_text(Stream& stream, unsigned version, http::status status, std::string body,
                        bool keep_alive = false, bool ask_for_upgrade = false)
{
    http::response<http::string_body> res{status, version};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    if (ask_for_upgrade) { // RFC 7231 section 6.5.15: a 426 names the protocol to use
        res.set(http::field::upgrade, "websocket");
        res.set(http::field::connection, "Upgrade");
        res.set(http::field::sec_websocket_version, "13");
    }
    res.body() = std::move(body);
    co_return co_await respond(stream, res, keep_alive);
}

} // namespace mallard::detail

#endif
