// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_LISTENER_HPP
#define MALLARD_DETAIL_LISTENER_HPP

// From an accepted TCP socket to a running session: read the HTTP request
// under the handshake timeout, route it, answer what is not a WebSocket
// upgrade for a known path (404, 426, 400, 431), make the view, and hand
// over to detail::session.

#include <mallard/detail/session.hpp>
#include <mallard/detail/worker.hpp>
#include <mallard/options.hpp>
#include <mallard/request.hpp>
#include <mallard/router.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mallard::detail {

/// What every connection reads from its server; fixed once `run()` starts.
struct server_state {
    server_options options;
    mallard::router routes;
    std::atomic<std::uint64_t> next_id{1};
};

/// Keeps a stream in its worker's `handshakes` while in the HTTP phase, so
/// that shutdown can cut it. (A named type: g++ 12 cannot mangle a local
/// class inside a coroutine.)
class handshake_registration {
public:
    handshake_registration(worker& w, beast::tcp_stream* stream) : worker_(w), stream_(stream)
    {
        worker_.handshakes.insert(stream_);
    }
    handshake_registration(handshake_registration const&) = delete;
    handshake_registration& operator=(handshake_registration const&) = delete;
    ~handshake_registration() { release(); }

    void release()
    {
        if (stream_ && worker_.handshakes.erase(std::exchange(stream_, nullptr)))
            worker_.maybe_finish();
    }

private:
    worker& worker_;
    beast::tcp_stream* stream_;
};

/// Answers a request that will not become a WebSocket and ends the connection.
inline task<void> refuse(beast::tcp_stream& stream, unsigned version, http::status status,
                         std::string body, bool ask_for_upgrade = false)
{
    http::response<http::string_body> res{status, version};
    res.set(http::field::server, server_header);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    if (ask_for_upgrade) { // RFC 7231 section 6.5.15: a 426 names the protocol to use
        res.set(http::field::upgrade, "websocket");
        res.set(http::field::connection, "Upgrade");
        res.set(http::field::sec_websocket_version, "13");
    }
    res.keep_alive(false);
    res.body() = std::move(body);
    res.prepare_payload();
    co_await http::async_write(stream, res, use_tuple);
    error_code ignored;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
}

inline task<void> serve_connection(net::ip::tcp::socket socket, server_state& server, worker& w)
{
    auto const& options = server.options;
    auto const& log = options.log;
    beast::tcp_stream stream(std::move(socket));
    error_code ignored;
    // Small frames must leave at once: Nagle plus delayed ACKs costs ~40 ms.
    stream.socket().set_option(net::ip::tcp::no_delay(true), ignored);

    handshake_registration registration{w, &stream};

    beast::flat_buffer buffer;
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_request_bytes));
    stream.expires_after(options.handshake_timeout);
    auto [ec, bytes] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (ec) {
        if (ec == http::error::header_limit)
            co_await refuse(stream, 11, http::status::request_header_fields_too_large,
                            "Request headers too large\n");
        else if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
                 ec != net::error::operation_aborted && ec != net::error::eof &&
                 ec != net::error::connection_reset)
            co_await refuse(stream, 11, http::status::bad_request, "Bad request\n");
        co_return;
    }
    auto upgrade = parser.release();
    auto const version = upgrade.version();

    auto url = boost::urls::parse_origin_form(upgrade.target());
    if (!url) {
        co_await refuse(stream, version, http::status::bad_request, "Bad request target\n");
        co_return;
    }
    std::vector<std::string> segments;
    for (auto segment : url->segments())
        segments.push_back(std::move(segment));
    path_params params;
    route const* matched = server.routes.match(segments, params);
    if (!matched) {
        log.write(log_level::info, log_category::access,
                  "404 for " + std::string(upgrade.target()));
        co_await refuse(stream, version, http::status::not_found, "Not found\n");
        co_return;
    }
    if (!websocket::is_upgrade(upgrade)) {
        co_await refuse(stream, version, http::status::upgrade_required,
                        "This is a WebSocket endpoint\n", true);
        co_return;
    }
    if (w.stopping) {
        co_await refuse(stream, version, http::status::service_unavailable,
                        "Shutting down\n");
        co_return;
    }

    std::unique_ptr<websocket_view> view;
    try {
        view = matched->make_view();
    } catch (std::exception const& ex) {
        log.write(log_level::error, log_category::diagnostic,
                  "the view factory for " + matched->pattern() + " threw: " + ex.what());
    }
    if (!view) {
        co_await refuse(stream, version, http::status::internal_server_error,
                        "Internal server error\n");
        co_return;
    }

    request::query_list query;
    for (auto param : url->params())
        query.emplace_back(std::move(param.key), std::move(param.value));
    mallard::request req(upgrade, std::string(url->path()), std::move(params), std::move(query));

    registration.release();
    stream.expires_never(); // from here on Beast's WebSocket timeouts apply
    auto connection = std::make_shared<session<beast::tcp_stream>>(
        std::move(stream), std::move(view), matched->limits(), log,
        server.next_id.fetch_add(1, std::memory_order_relaxed), w, options.handshake_timeout);
    co_await connection->run(std::move(upgrade), std::move(req));
}

} // namespace mallard::detail

#endif
