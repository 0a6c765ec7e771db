// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_LISTENER_HPP
#define MALLARD_DETAIL_LISTENER_HPP

// From an accepted TCP socket to a running session: read the HTTP request
// under the handshake timeout, carry out what detail/http/request_decision.hpp
// decides for it (a plain answer, a static file, a refusal, or an upgrade),
// and hand an upgrade over to detail::session. TLS connections arrive here
// after their TLS handshake (see impl/tls.ipp).

#include <mallard/detail/http/request_decision.hpp>
#include <mallard/detail/http/responses.hpp>
#include <mallard/detail/server_state.hpp>
#include <mallard/detail/session.hpp>
#include <mallard/detail/http/static_files.hpp>
#include <mallard/detail/tcp_stream.hpp>
#include <mallard/detail/worker.hpp>
#include <mallard/options.hpp>
#include <mallard/request.hpp>
#include <mallard/router.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <filesystem>
#include <optional>
#include <tuple>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace mallard::detail {

/// Sends a file the decision chose; 404 when it cannot be opened after all.
/// Returns whether to read another request.
template <class Stream>
task<bool> send_static_file(Stream& stream, http::request<http::empty_body> const& req,
                            static_file_reply const& reply, logger const& log)
{
    auto const version = req.version();
    http::file_body::value_type body;
    error_code ec;
    body.open(reply.file.c_str(), beast::file_mode::scan, ec);
    if (ec) {
        log.write(log_level::info, log_category::access, "404 for " + std::string(req.target()));
        co_return co_await respond_text(stream, version, http::status::not_found, "Not found\n",
                                        reply.keep_alive);
    }
    auto const type = content_type_for(reply.file);
    if (reply.head_only) {
        http::response<http::empty_body> res{http::status::ok, version};
        res.set(http::field::content_type, type);
        res.content_length(body.size());
        res.set(http::field::server, server_header);
        res.keep_alive(reply.keep_alive);
        auto [wec, bytes] = co_await http::async_write(stream, res, use_tuple);
        co_return !wec && reply.keep_alive;
    }
    http::response<http::file_body> res{std::piecewise_construct, std::make_tuple(std::move(body)),
                                        std::make_tuple(http::status::ok, version)};
    res.set(http::field::content_type, type);
    co_return co_await respond(stream, res, reply.keep_alive);
}

/// Small frames must leave at once: Nagle plus delayed ACKs costs ~40 ms.
inline void send_without_delay(tcp_stream& stream)
{
    error_code ignored;
    stream.socket().set_option(net::ip::tcp::no_delay(true), ignored);
}

/// Serves HTTP requests on an established stream (plain TCP, or TLS after
/// its handshake) until one becomes a WebSocket, which then runs to its end.
/// What each request gets is decide_request's; this only reads and writes.
template <class Stream>
task<void> serve_http(Stream stream, server_state& server, worker& w,
                      listener_kind listener = listener_kind::public_port)
{
    auto const& options = server.options;
    auto const& log = options.log;
    auto& tcp = beast::get_lowest_layer(stream);
    handshake_registration registration{w, &tcp};
    beast::flat_buffer buffer;
    for (;;) { // one request per turn: plain HTTP may keep the connection alive
        http::request_parser<http::empty_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(options.max_request_bytes));
        tcp.expires_after(options.handshake_timeout);
        auto [ec, bytes] = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (ec) {
            if (auto reply = reply_to_read_error(ec))
                co_await respond(stream, reply->response, false);
            co_return;
        }
        auto upgrade = parser.release();
        error_code no_peer; // a peer already gone is caught by the next write
        auto const peer = tcp.socket().remote_endpoint(no_peer).address();
        auto decision = decide_request(upgrade, server, request_context{w.phase(), peer, listener});
        if (!std::holds_alternative<upgrade_plan>(decision)) {
            bool keep = false;
            if (auto* reply = std::get_if<http_reply>(&decision)) {
                if (websocket::is_upgrade(upgrade))
                    w.http_stats().refused(reply->response.result_int());
                keep = co_await respond(stream, reply->response, reply->keep_alive);
            }
            else
                keep = co_await send_static_file(stream, upgrade,
                                                 std::get<static_file_reply>(decision), log);
            if (!keep || w.stopping())
                co_return;
            continue;
        }
        auto& plan = std::get<upgrade_plan>(decision);

        registration.release(); // the session registers itself until the upgrade is done
        tcp.expires_never();    // from here on Beast's WebSocket timeouts apply
        auto const route_index =
            static_cast<std::size_t>(plan.matched - server.routes.routes().data());
        auto connection = std::make_shared<session<Stream>>(
            std::move(stream), std::move(plan.view), plan.matched->limits(), log,
            server.next_id.fetch_add(1, std::memory_order_relaxed), w,
            session_services{*server.groups, w.stats(route_index), w.index(), route_index},
            options.handshake_timeout,
            plan.matched->asks_on_upgrade());
        connection->hold(std::move(plan.place));
        // The connection runs as a coroutine of its own, so that this one
        // ends now: its frame (the HTTP parser's buffers, the TCP stream it
        // moved from) would otherwise stay allocated as long as the
        // connection is open. co_spawn starts it before returning.
        net::co_spawn(w.loop(),
                      connection->run(std::move(upgrade), std::move(plan.request),
                                      std::move(plan.subprotocol),
                                      beast::buffers_to_string(buffer.data())),
                      [&log](std::exception_ptr e) {
                          if (e)
                              log.write(log_level::error, log_category::diagnostic,
                                        "a connection failed: " + describe(e));
                      });
        co_return;
    }
}

} // namespace mallard::detail

#endif
