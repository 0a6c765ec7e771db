// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_HTTP_REQUEST_DECISION_HPP
#define MALLARD_DETAIL_HTTP_REQUEST_DECISION_HPP

// What one HTTP request gets, decided without I/O: a plain answer (the
// user's handler, the health check, a 404), a file from the static folder,
// a refusal of a WebSocket upgrade with the status RFC 6455 and RFC 9110 name
// (400, 404, 405, 426, 403, 503, 500), or the plan for an upgrade: route,
// view and subprotocol. detail/listener.hpp reads the request and carries the
// decision out; tests/unit drives this directly.

#include <mallard/detail/admission.hpp>
#include <mallard/detail/http/client_address.hpp>
#include <mallard/detail/server_state.hpp>
#include <mallard/detail/http/static_files.hpp>
#include <mallard/detail/http/status_page.hpp>
#include <mallard/detail/http/subprotocol.hpp>
#include <mallard/logger.hpp>
#include <mallard/request.hpp>
#include <mallard/router.hpp>
#include <mallard/websocket_view.hpp>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/url/parse.hpp>

#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace mallard::detail {

/// A plain HTTP answer; the connection reads another request after it only
/// when `keep_alive`.
struct http_reply {
    http::response<http::string_body> response;
    bool keep_alive = false;
};

/// A file of the static folder, for GET (`head_only` false) or HEAD.
struct static_file_reply {
    std::filesystem::path file;
    bool head_only = false;
    bool keep_alive = false;
};

/// A WebSocket upgrade to carry out: the view is made, the subprotocol chosen.
struct upgrade_plan {
    route const* matched = nullptr;
    std::unique_ptr<websocket_view> view;
    std::string subprotocol; ///< empty when none was agreed
    mallard::request request;
    admission::ticket place;  ///< the connection's place under the admission limits
};

using request_decision = std::variant<http_reply, static_file_reply, upgrade_plan>;

/// A short text answer with `status`, as every refusal is.
inline http_reply text_reply(unsigned version, http::status status, std::string body,
                             bool keep_alive = false)
{
    http::response<http::string_body> res{status, version};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::move(body);
    return {std::move(res), keep_alive};
}

/** The answer to a request that could not be read: 431 when its headers
    passed `max_request_bytes`, 400 when it is not HTTP; none when the peer
    went away or the handshake timeout passed (nobody is there to read it).
*/
inline std::optional<http_reply> reply_to_read_error(error_code const& ec)
{
    if (ec == http::error::header_limit)
        return text_reply(11, http::status::request_header_fields_too_large,
                          "Request headers too large\n");
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset)
        return std::nullopt;
    return text_reply(11, http::status::bad_request, "Bad request\n");
}

/** Whether `key` is what RFC 6455 section 4.2.1 asks of a Sec-WebSocket-Key:
    the base64 encoding of 16 bytes. That is 22 digits, of which the last
    carries only 2 bits (its other 4 are zero), and "==".
*/
inline bool is_websocket_key(std::string_view key) noexcept
{
    constexpr std::string_view digits =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (key.size() != 24 || key.substr(22) != "==")
        return false;
    for (char const c : key.substr(0, 22))
        if (digits.find(c) == std::string_view::npos)
            return false;
    return digits.find(key[21]) % 16 == 0;
}

/// The 503 for an upgrade while the server drains or stops, with the
/// Retry-After the options name.
inline http_reply shutting_down_reply(unsigned version, server_options const& options)
{
    auto reply = text_reply(version, http::status::service_unavailable, "Shutting down\n");
    reply.response.set(http::field::retry_after, std::to_string(options.drain_retry_after.count()));
    return reply;
}

/// Where a request comes from: the server's phase as its thread sees it,
/// the TCP peer, and the listener.
struct request_context {
    server_phase phase = server_phase::serving;
    net::ip::address peer{};
    listener_kind listener = listener_kind::public_port;
};

/// What the operators' paths answer (health, readiness, metrics, status
/// page), or nothing for another path. With an admin port, the metrics and
/// the status page are answered there only.
inline std::optional<http_reply> decide_operator_request(http::request<http::empty_body> const& req,
                                                          std::string const& path,
                                                          server_state const& server,
                                                          request_context const& context)
{
    auto const& options = server.options;
    auto const version = req.version();
    bool const keep = req.keep_alive();
    if (!options.health_path.empty() && path == options.health_path)
        return text_reply(version, http::status::ok, "ok\n", keep);
    if (!options.readiness_path.empty() && path == options.readiness_path) {
        if (context.phase == server_phase::serving)
            return text_reply(version, http::status::ok, "ready\n", keep);
        // A load balancer sends no new clients; those already here are closing.
        auto reply = text_reply(version, http::status::service_unavailable, "draining\n", keep);
        reply.response.set(http::field::retry_after,
                           std::to_string(options.drain_retry_after.count()));
        return reply;
    }
    if (options.admin_port && context.listener != listener_kind::admin_port)
        return std::nullopt;
    bool const is_metrics = !options.metrics_path.empty() && path == options.metrics_path;
    bool const is_status = !options.status_path.empty() && path == options.status_path;
    if (!is_metrics && !is_status)
        return std::nullopt;
    if (req.method() != http::verb::get) {
        auto reply = text_reply(version, http::status::method_not_allowed,
                                "Method not allowed\n", keep);
        reply.response.set(http::field::allow, "GET");
        return reply;
    }
    http::response<http::string_body> res{http::status::ok, version};
    // Always current: a cached scrape or page would show the past.
    res.set(http::field::cache_control, "no-store");
    if (is_metrics) {
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.body() = to_prometheus(server.read_metrics());
    } else {
        res.set(http::field::content_type, "text/html; charset=utf-8");
        res.body() = status_page(options.metrics_path);
    }
    return http_reply{std::move(res), keep};
}

/// What a plain HTTP request (no route matched) gets: the user's handler,
/// else the operators' paths, else the static folder, else 404.
inline request_decision decide_plain_request(http::request<http::empty_body> const& req,
                                             std::string const& path,
                                             std::vector<std::string> const& segments,
                                             server_state const& server,
                                             request_context const& context)
{
    auto const& options = server.options;
    auto const& log = options.log;
    auto const version = req.version();
    bool const keep = req.keep_alive();
    if (options.http_handler) {
        std::optional<http::response<http::string_body>> answer;
        try {
            answer = options.http_handler(
                mallard::request(req, path, {}, {}, plain_address(context.peer),
                                 client_address(context.peer, req, server.trusted_proxies)));
        } catch (std::exception const& ex) {
            log.write(log_level::error, log_category::diagnostic,
                      std::string("the http_handler threw: ") + ex.what());
            return text_reply(version, http::status::internal_server_error,
                              "Internal server error\n", keep);
        }
        if (answer) {
            answer->version(version);
            return http_reply{std::move(*answer), keep};
        }
    }
    if (auto reply = decide_operator_request(req, path, server, context))
        return std::move(*reply);
    if (server.static_root) {
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            auto reply = text_reply(version, http::status::method_not_allowed,
                                    "Method not allowed\n", keep);
            reply.response.set(http::field::allow, "GET, HEAD");
            return reply;
        }
        if (auto file = resolve_static_file(*server.static_root, segments))
            return static_file_reply{std::move(*file), req.method() == http::verb::head, keep};
    }
    log.write(log_level::info, log_category::access, "404 for " + std::string(req.target()));
    return text_reply(version, http::status::not_found, "Not found\n", keep);
}

/** Decides what `req` gets on a server in state `server`.

    Sans-I/O but for what the server's configuration runs: the user's
    `http_handler`, the view factory and the static folder's lookup. Refusals
    are logged (access) as before the decision moved here.
    @param context the server's phase (draining or stopping, an upgrade
    gets 503 with Retry-After, readiness_path 503), the TCP peer, and the
    listener (the admin port answers the operators' paths only)
*/
inline request_decision decide_request(http::request<http::empty_body> const& req,
                                       server_state const& server, request_context const& context)
{
    auto const phase = context.phase;
    auto const& peer = context.peer;
    auto const& log = server.options.log;
    auto const version = req.version();
    // RFC 9112 section 3.2: an HTTP/1.1 request names its Host once.
    auto const hosts = req.count(http::field::host);
    if (hosts > 1 || (hosts == 0 && version >= 11))
        return text_reply(version, http::status::bad_request,
                          "A request names its Host exactly once\n");
    auto url = boost::urls::parse_origin_form(req.target());
    if (!url)
        return text_reply(version, http::status::bad_request, "Bad request target\n");
    if (context.listener == listener_kind::admin_port) {
        if (auto reply = decide_operator_request(req, std::string(url->path()), server, context))
            return std::move(*reply);
        return text_reply(version, http::status::not_found, "Not found\n", req.keep_alive());
    }
    std::vector<std::string> segments;
    for (auto segment : url->segments())
        segments.push_back(std::move(segment));
    path_params params;
    route const* matched = server.routes.match(segments, params);
    bool const is_upgrade = websocket::is_upgrade(req);
    if (!matched) {
        if (is_upgrade) { // a WebSocket to nowhere
            log.write(log_level::info, log_category::access,
                      "404 for " + std::string(req.target()));
            return text_reply(version, http::status::not_found, "Not found\n");
        }
        return decide_plain_request(req, std::string(url->path()), segments, server, context);
    }
    if (req.method() != http::verb::get) { // RFC 6455 section 4.1: the upgrade is a GET
        auto reply = text_reply(version, http::status::method_not_allowed,
                                "A WebSocket upgrade is a GET request\n");
        reply.response.set(http::field::allow, "GET");
        return reply;
    }
    if (!is_upgrade) { // RFC 9110 section 15.5.22: a 426 names the protocol to use
        auto reply = text_reply(version, http::status::upgrade_required,
                                "This is a WebSocket endpoint\n");
        reply.response.set(http::field::upgrade, "websocket");
        reply.response.set(http::field::connection, "Upgrade");
        reply.response.set(http::field::sec_websocket_version, "13");
        return reply;
    }
    if (req.count(http::field::sec_websocket_key) != 1 ||
        !is_websocket_key(req[http::field::sec_websocket_key])) {
        log.write(log_level::info, log_category::access,
                  "400 for a bad Sec-WebSocket-Key on " + std::string(req.target()));
        return text_reply(version, http::status::bad_request,
                          "Sec-WebSocket-Key must be sent once, as base64 of 16 bytes\n");
    }
    auto const origin = std::string_view(req[http::field::origin]);
    if (!matched->allows_origin(origin)) {
        log.write(log_level::info, log_category::access,
                  "403 for origin " + std::string(origin) + " on " + std::string(req.target()));
        return text_reply(version, http::status::forbidden, "Origin not allowed\n");
    }
    auto subprotocol = select_subprotocol(req, matched->subprotocols());
    if (subprotocol.empty() && matched->require_subprotocol()) {
        log.write(log_level::info, log_category::access,
                  "400 for no common subprotocol on " + std::string(req.target()));
        return text_reply(version, http::status::bad_request,
                          "No supported subprotocol; this endpoint speaks: " +
                              list_subprotocols(matched->subprotocols()) + "\n");
    }
    if (phase != server_phase::serving)
        return shutting_down_reply(version, server.options);

    auto const client = client_address(peer, req, server.trusted_proxies);
    admission::ticket place;
    if (server.admission) {
        auto [ticket, refusal] = server.admission->admit(client);
        if (refusal == admission::refusal::server_full) {
            log.write(log_level::warning, log_category::access,
                      "503 for " + std::string(req.target()) + ": max_connections reached");
            auto reply = text_reply(version, http::status::service_unavailable,
                                    "Too many connections\n");
            reply.response.set(http::field::retry_after,
                               std::to_string(server.options.drain_retry_after.count()));
            return reply;
        }
        if (refusal == admission::refusal::address_full) {
            log.write(log_level::info, log_category::access,
                      "429 for " + client.to_string() + ": max_connections_per_address reached");
            return text_reply(version, http::status::too_many_requests,
                              "Too many connections from your address\n");
        }
        place = std::move(ticket);
    }

    std::unique_ptr<websocket_view> view;
    try {
        view = matched->make_view();
    } catch (std::exception const& ex) {
        log.write(log_level::error, log_category::diagnostic,
                  "the view factory for " + matched->pattern() + " threw: " + ex.what());
    }
    if (!view)
        return text_reply(version, http::status::internal_server_error, "Internal server error\n");

    request::query_list query;
    for (auto param : url->params())
        query.emplace_back(std::move(param.key), std::move(param.value));
    return upgrade_plan{matched, std::move(view), std::move(subprotocol),
                        mallard::request(req, std::string(url->path()), std::move(params),
                                         std::move(query), plain_address(peer), client),
                        std::move(place)};
}

/// decide_request for a request on the public port from no particular peer
/// (the unit tests' way in).
inline request_decision decide_request(http::request<http::empty_body> const& req,
                                       server_state const& server, server_phase phase)
{
    return decide_request(req, server, request_context{phase});
}

} // namespace mallard::detail

#endif
