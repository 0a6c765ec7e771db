// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_LISTENER_HPP
#define MALLARD_DETAIL_LISTENER_HPP

// From an accepted TCP socket to a running session: read the HTTP request
// under the handshake timeout, route it, answer what is not a WebSocket
// upgrade for a known path (404, 405, 426, 403, 400, 431), make the view,
// and hand over to detail::session. TLS connections arrive here after their
// TLS handshake (see <mallard/tls.hpp>).

#include <mallard/detail/http_responses.hpp>
#include <mallard/detail/session.hpp>
#include <mallard/detail/static_files.hpp>
#include <mallard/detail/subprotocol.hpp>
#include <mallard/detail/tcp_stream.hpp>
#include <mallard/detail/worker.hpp>
#include <mallard/options.hpp>
#include <mallard/request.hpp>
#include <mallard/router.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>

#include <atomic>
#include <filesystem>
#include <optional>
#include <tuple>
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
    group_hub* groups = nullptr;
    /// The canonical static folder, when there is one.
    std::optional<std::filesystem::path> static_root;
};

/// Serves a file from the static folder, or 404; GET and HEAD only.
template <class Stream>
task<bool> respond_static(Stream& stream, http::request<http::empty_body> const& req,
                          std::filesystem::path const& root,
                          std::vector<std::string> const& segments, logger const& log)
{
    auto const version = req.version();
    bool const keep = req.keep_alive();
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
        http::response<http::string_body> res{http::status::method_not_allowed, version};
        res.set(http::field::allow, "GET, HEAD");
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.body() = "Method not allowed\n";
        co_return co_await respond(stream, res, keep);
    }
    auto const file = resolve_static_file(root, segments);
    http::file_body::value_type body;
    error_code ec;
    if (file)
        body.open(file->c_str(), beast::file_mode::scan, ec);
    if (!file || ec) {
        log.write(log_level::info, log_category::access, "404 for " + std::string(req.target()));
        co_return co_await respond_text(stream, version, http::status::not_found, "Not found\n",
                                        keep);
    }
    auto const type = content_type_for(*file);
    if (req.method() == http::verb::head) {
        http::response<http::empty_body> res{http::status::ok, version};
        res.set(http::field::content_type, type);
        res.content_length(body.size());
        res.set(http::field::server, server_header);
        res.keep_alive(keep);
        auto [wec, bytes] = co_await http::async_write(stream, res, use_tuple);
        co_return !wec && keep;
    }
    http::response<http::file_body> res{std::piecewise_construct, std::make_tuple(std::move(body)),
                                        std::make_tuple(http::status::ok, version)};
    res.set(http::field::content_type, type);
    co_return co_await respond(stream, res, keep);
}

/// Small frames must leave at once: Nagle plus delayed ACKs costs ~40 ms.
inline void send_without_delay(tcp_stream& stream)
{
    error_code ignored;
    stream.socket().set_option(net::ip::tcp::no_delay(true), ignored);
}

/// Serves HTTP requests on an established stream (plain TCP, or TLS after
/// its handshake) until one becomes a WebSocket, which then runs to its end.
template <class Stream>
task<void> serve_http(Stream stream, server_state& server, worker& w)
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
            if (ec == http::error::header_limit)
                co_await respond_text(stream, 11, http::status::request_header_fields_too_large,
                                      "Request headers too large\n");
            else if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
                     ec != net::error::operation_aborted && ec != net::error::eof &&
                     ec != net::error::connection_reset)
                co_await respond_text(stream, 11, http::status::bad_request, "Bad request\n");
            co_return;
        }
        auto upgrade = parser.release();
        auto const version = upgrade.version();

        auto url = boost::urls::parse_origin_form(upgrade.target());
        if (!url) {
            co_await respond_text(stream, version, http::status::bad_request,
                                  "Bad request target\n");
            co_return;
        }
        std::vector<std::string> segments;
        for (auto segment : url->segments())
            segments.push_back(std::move(segment));
        path_params params;
        route const* matched = server.routes.match(segments, params);
        bool const is_upgrade = websocket::is_upgrade(upgrade);
        if (!matched) {
            if (is_upgrade) { // a WebSocket to nowhere
                log.write(log_level::info, log_category::access,
                          "404 for " + std::string(upgrade.target()));
                co_await respond_text(stream, version, http::status::not_found, "Not found\n");
                co_return;
            }
            // Plain HTTP beside the WebSockets: the user's handler, health, files.
            bool keep = false;
            mallard::request plain(upgrade, std::string(url->path()), {}, {});
            std::optional<http::response<http::string_body>> answer;
            if (options.http_handler) {
                try {
                    answer = options.http_handler(plain);
                } catch (std::exception const& ex) {
                    log.write(log_level::error, log_category::diagnostic,
                              std::string("the http_handler threw: ") + ex.what());
                    answer.emplace(http::status::internal_server_error, version);
                    answer->body() = "Internal server error\n";
                }
            }
            if (answer) {
                answer->version(version);
                keep = co_await respond(stream, *answer, upgrade.keep_alive());
            } else if (!options.health_path.empty() && url->path() == options.health_path) {
                keep = co_await respond_text(stream, version, http::status::ok, "ok\n",
                                             upgrade.keep_alive());
            } else if (server.static_root) {
                keep = co_await respond_static(stream, upgrade, *server.static_root, segments, log);
            } else {
                log.write(log_level::info, log_category::access,
                          "404 for " + std::string(upgrade.target()));
                keep = co_await respond_text(stream, version, http::status::not_found,
                                             "Not found\n", upgrade.keep_alive());
            }
            if (!keep || w.stopping)
                co_return;
            continue;
        }
        if (upgrade.method() != http::verb::get) { // RFC 6455 section 4.1: the upgrade is a GET
            http::response<http::string_body> res{http::status::method_not_allowed, version};
            res.set(http::field::allow, "GET");
            res.set(http::field::content_type, "text/plain; charset=utf-8");
            res.body() = "A WebSocket upgrade is a GET request\n";
            co_await respond(stream, res, false);
            co_return;
        }
        if (!is_upgrade) {
            co_await respond_text(stream, version, http::status::upgrade_required,
                                  "This is a WebSocket endpoint\n", false, true);
            co_return;
        }
        if (!matched->allows_origin(std::string_view(upgrade[http::field::origin]))) {
            log.write(log_level::info, log_category::access,
                      "403 for origin " + std::string(upgrade[http::field::origin]) + " on " +
                          std::string(upgrade.target()));
            co_await respond_text(stream, version, http::status::forbidden,
                                  "Origin not allowed\n");
            co_return;
        }
        auto subprotocol = select_subprotocol(upgrade, matched->subprotocols());
        if (subprotocol.empty() && matched->require_subprotocol()) {
            log.write(log_level::info, log_category::access,
                      "400 for no common subprotocol on " + std::string(upgrade.target()));
            co_await respond_text(stream, version, http::status::bad_request,
                                  "No supported subprotocol; this endpoint speaks: " +
                                      list_subprotocols(matched->subprotocols()) + "\n");
            co_return;
        }
        if (w.stopping) {
            co_await respond_text(stream, version, http::status::service_unavailable,
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
            co_await respond_text(stream, version, http::status::internal_server_error,
                                  "Internal server error\n");
            co_return;
        }

        request::query_list query;
        for (auto param : url->params())
            query.emplace_back(std::move(param.key), std::move(param.value));
        mallard::request req(upgrade, std::string(url->path()), std::move(params),
                             std::move(query));

        registration.release(); // the session registers itself until the upgrade is done
        tcp.expires_never();    // from here on Beast's WebSocket timeouts apply
        auto connection = std::make_shared<session<Stream>>(
            std::move(stream), std::move(view), matched->limits(), log,
            server.next_id.fetch_add(1, std::memory_order_relaxed), w,
            session_services{*server.groups, w.stats, w.index}, options.handshake_timeout);
        // The connection runs as a coroutine of its own, so that this one
        // ends now: its frame (the HTTP parser's buffers, the TCP stream it
        // moved from) would otherwise stay allocated as long as the
        // connection is open. co_spawn starts it before returning.
        net::co_spawn(w.ioc,
                      connection->run(std::move(upgrade), std::move(req), std::move(subprotocol)),
                      [&log](std::exception_ptr e) {
                          if (e)
                              log.write(log_level::error, log_category::diagnostic,
                                        "a connection failed: " + describe(e));
                      });
        co_return;
    }
}

/// Serves a connection accepted on a plain (ws://) port.
inline task<void> serve_connection(net::ip::tcp::socket socket, server_state& server, worker& w)
{
    tcp_stream stream(std::move(socket));
    send_without_delay(stream);
    co_await serve_http(std::move(stream), server, w);
}

} // namespace mallard::detail

#endif
