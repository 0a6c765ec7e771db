// SPDX-License-Identifier: BSL-1.0
/// @file
/// The server's options and each route's: limits, timeouts, policies.
#ifndef MALLARD_OPTIONS_HPP
#define MALLARD_OPTIONS_HPP

#include <mallard/backplane.hpp>
#include <mallard/close_reason.hpp>
#include <mallard/detail/group_policies.hpp>
#include <mallard/group_policy.hpp>
#include <mallard/logger.hpp>
#include <mallard/request.hpp>
#include <mallard/tls_context.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace mallard {

/** What to do with a connection whose outbound queue passes its byte bound.

    A client that reads more slowly than the server writes to it must not
    hold the server's memory or delay anyone else.
*/
enum class slow_consumer_policy {
    close,       ///< close it with 1008 (policy violation); the default
    drop_oldest, ///< discard the oldest unsent messages until the new one fits
    keep_latest, ///< while the client is behind, keep only its newest message
};

/// What happens to a client that sends faster than its route's `receive_rate`.
enum class rate_limit_action {
    /// Stop reading from it until its budget has refilled: TCP holds the
    /// rest back in the client, nothing is lost. The default.
    pause,
    /// Close it with 1008 "rate limit"; the message over the limit is not
    /// delivered.
    close,
};

/** How fast one client may send to the server: a token bucket for messages
    and one for bytes, refilled continuously at their rate. A rate of 0 sets
    no limit. Over the limit, `action` applies.

    @par Example: 20 messages and 64 KiB a second, bursts of 40 messages
    @code
    mallard::rate_limit{.messages_per_second = 20, .bytes_per_second = 64 * 1024,
                        .message_burst = 40}
    @endcode
*/
struct rate_limit {
    /// Messages per second; 0 (the default): no limit on messages.
    double messages_per_second = 0;
    /// Payload bytes per second; 0 (the default): no limit on bytes.
    double bytes_per_second = 0;
    /// Messages a client may send at once before the rate holds it; 0 (the
    /// default): one second's worth (at least 1).
    double message_burst = 0;
    /// Bytes a client may send at once before the rate holds it; 0 (the
    /// default): one second's worth. With `close`, a message larger than
    /// this is always over the limit.
    double byte_burst = 0;
    /// What happens over the limit. Default: pause reading.
    rate_limit_action action = rate_limit_action::pause;

    /// Whether any limit is set.
    constexpr bool limits() const noexcept
    {
        return messages_per_second > 0 || bytes_per_second > 0;
    }
};

/** Your own answer to a plain HTTP request that no WebSocket route claims.

    Return a response to send it, or nothing to let the server go on (health
    check, static files, 404). Runs on a server thread: it must not block.
*/
using http_handler =
    std::function<std::optional<http::response<http::string_body>>(request const&)>;

/** Options of a whole server; an aggregate for designated initializers.

    @par Example
    @code
    mallard::server srv{{.port = 8080, .threads = 4}, urls};
    @endcode
*/
struct server_options {
    /// The address to listen on. Default loopback: exposing a server to the
    /// network is a decision to make on purpose.
    std::string address = "127.0.0.1";
    /// The TCP port: ws://, or wss:// when `tls` is set. 0 picks a free one,
    /// readable afterwards from `server::port()`.
    unsigned short port = 8080;
    /// Serve wss:// on `port` with this certificate and key, made by
    /// `mallard::load_tls` from `<mallard/tls.hpp>` (CMake target
    /// `mallard::tls`). Default (empty): plain ws://.
    std::shared_ptr<tls_context const> tls{};
    /// With `tls` set, also serve plain ws:// on this port (0 picks a free
    /// one, readable from `server::plain_port()`), e.g. for a proxy on the
    /// same host. Default (empty): TLS only.
    std::optional<unsigned short> plain_port{};
    /// Threads, each running its own event loop; every connection stays on
    /// one of them for its life. Default: the hardware's concurrency.
    unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    /// Where log records go. Default: warnings and errors on stderr.
    logger log{};
    /// Time allowed for a client to send its HTTP upgrade request, and for
    /// the WebSocket closing handshake. Default 10 s: generous for a slow
    /// network, short enough that idle half-open sockets do not pile up.
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds{10};
    /// The largest HTTP request (request line and headers) accepted, in bytes.
    /// Default 8 KiB, as in common reverse proxies; larger answers 431.
    std::size_t max_request_bytes = 8 * 1024;
    /// How long `stop()` waits for clients to finish the closing handshake
    /// before their sockets are cut. Default 5 s.
    std::chrono::milliseconds shutdown_grace = std::chrono::seconds{5};
    /// How long a graceful stop (`stop()`, SIGTERM) spends closing the open
    /// connections, spread evenly over it, so that their clients do not all
    /// reconnect at once; meanwhile the server answers new upgrades with 503
    /// and `readiness_path` with 503. Default 0: all at once.
    std::chrono::milliseconds drain_window{0};
    /// The close code of a graceful stop: 1001 going away (the default), or
    /// 1012 service restart, which tells clients to come back; any code a
    /// server may send (3000-4999 too).
    close_code drain_close_code = close_code::going_away;
    /// The Retry-After of the 503 that upgrades get while the server drains
    /// or stops, in whole seconds. Default 5 s.
    std::chrono::seconds drain_retry_after{5};
    /// A path that answers GET with 200 "ready" while the server serves and
    /// 503 from the moment it starts to drain or stop, for load balancers'
    /// readiness checks (`health_path` stays 200 until the end). Empty: none.
    std::string readiness_path = "/readyz";
    /// A folder whose files are served for GET and HEAD requests that no
    /// WebSocket route claims (index.html for a folder); empty: none.
    std::string static_directory{};
    /// A path that answers 200 "ok" to GET, for load balancers; empty: none.
    std::string health_path = "/healthz";
    /// A path that answers GET with the server's metrics in Prometheus'
    /// text format (the README's Metrics section lists them), e.g.
    /// "/metrics". Default (empty): none. It tells anyone who can reach the
    /// port how busy the server is: expose it where scrapers alone reach it.
    std::string metrics_path{};
    /// A path that answers GET with a live status page: one self-contained
    /// HTML page drawing connections, messages per second, send queues,
    /// close codes and groups from `metrics_path`, which it needs. Default
    /// (empty): none.
    std::string status_path{};
    /// Tried first for plain HTTP requests that no WebSocket route claims.
    mallard::http_handler http_handler{};
    /// Groups that keep a history of their messages or a list of their
    /// members, chosen by name (see `group_policy`). Default: none; every
    /// group is fire-and-forget.
    std::vector<group_policy> groups{};
    /// Carries group publishes between processes. Default (empty): an
    /// `in_process_backplane`, so publishes reach this process's members.
    std::shared_ptr<mallard::backplane> backplane{};
    /// The most the connections may hold together, in bytes: every
    /// message read so far, every message queued to be sent, every write
    /// being gathered. Each of the `threads` enforces an equal share. Over
    /// it, reading pauses on the connections holding the most; those still
    /// over after `memory_budget_timeout` are closed with 1013 (try again
    /// later). Each connection is bounded by its own limits already
    /// (`max_message_size`, `max_send_queue_bytes`); this bounds their sum,
    /// e.g. a thousand peers each sending a large frame slowly. 0: no
    /// budget. Default 1 GiB: a thousand connections each with a whole
    /// 1 MiB message in hand, or 256 at a full 4 MiB send queue, fit.
    std::size_t memory_budget = std::size_t{1} << 30;
    /// How long a connection may stay paused by the budget, while its thread
    /// is still over, before it is closed with 1013. Default 5 s.
    std::chrono::milliseconds memory_budget_timeout = std::chrono::seconds{5};
    /// Proxies (addresses such as "10.0.0.1" or networks such as
    /// "10.0.0.0/8", "fd00::/8") whose `Forwarded` or `X-Forwarded-For`
    /// header names the client: behind a load balancer every client
    /// otherwise has its address. From anyone else the headers are ignored.
    /// See `request::client_address`. Default: none.
    std::vector<std::string> trusted_proxies{};
    /// The most WebSocket connections the server holds; more upgrades get
    /// 503 before any view is made. 0 (the default): no limit.
    std::size_t max_connections = 0;
    /// The most WebSocket connections from one client address (an IPv4
    /// address, or an IPv6 /64); more get 429 before any view is made.
    /// 0 (the default): no limit.
    std::size_t max_connections_per_address = 0;
    /// A port apart from the public one where operators' requests are
    /// answered: metrics_path and status_path are then served there only,
    /// and health_path and readiness_path there too. Nothing else is served
    /// on it (no WebSocket, no files). 0 picks a free one, readable from
    /// `server::admin_port()`. Default (empty): none.
    std::optional<unsigned short> admin_port{};
    /// The address the admin port listens on. Default loopback.
    std::string admin_address = "127.0.0.1";
    /// Set SO_REUSEPORT on the listening sockets, so that several processes
    /// on one host serve the same port and the kernel spreads connections
    /// over them (with the Redis backplane they are one service). Default false.
    bool reuse_port = false;
    /// Whether `run()` turns SIGINT and SIGTERM into a graceful `stop()`.
    /// Default true; turn off when embedding in a program that owns signals.
    bool handle_signals = true;
};

/** Per-route overrides of a view's class-level options.

    Each member left empty inherits the view's `static constexpr` member of
    the same name, which in turn defaults to `websocket_view`'s.
*/
struct route_options {
    /// Replaces `websocket_view::receive_timeout`.
    std::optional<std::chrono::milliseconds> receive_timeout{};
    /// Replaces `websocket_view::max_frame_size`.
    std::optional<std::size_t> max_frame_size{};
    /// Replaces `websocket_view::max_message_size`.
    std::optional<std::size_t> max_message_size{};
    /// Replaces `websocket_view::max_send_queue_bytes`.
    std::optional<std::size_t> max_send_queue_bytes{};
    /// Replaces `websocket_view::send_queue_high_water`.
    std::optional<std::size_t> send_queue_high_water{};
    /// Replaces `websocket_view::ping_interval`.
    std::optional<std::chrono::milliseconds> ping_interval{};
    /// Replaces `websocket_view::pong_timeout`.
    std::optional<std::chrono::milliseconds> pong_timeout{};
    /// Replaces `websocket_view::slow_consumer`.
    std::optional<slow_consumer_policy> slow_consumer{};
    /// Replaces `websocket_view::send_timeout`.
    std::optional<std::chrono::milliseconds> send_timeout{};
    /// Replaces `websocket_view::socket_send_buffer`.
    std::optional<std::size_t> socket_send_buffer{};
    /// Replaces `websocket_view::permessage_deflate`.
    std::optional<bool> permessage_deflate{};
    /// Replaces `websocket_view::compression_threshold`.
    std::optional<std::size_t> compression_threshold{};
    /// How fast each client may send; replaces the view's `receive_rate`.
    std::optional<rate_limit> receive_rate{};
    /// How long a connection may last; replaces the view's `max_lifetime`.
    std::optional<std::chrono::milliseconds> max_lifetime{};
    /// How long before its expiry a view hears `on_expiring`; replaces the
    /// view's `expiry_notice`.
    std::optional<std::chrono::milliseconds> expiry_notice{};
    /// Browser origins allowed to connect, e.g. "https://example.com"; an
    /// upgrade with any other Origin header answers 403. Empty (the default)
    /// allows every origin. Clients that send no Origin (not browsers) are
    /// always allowed: the check protects users' browsers, not the server.
    std::vector<std::string> allowed_origins{};
    /// Subprotocols spoken, in order of preference; replaces the view's
    /// `subprotocols`. See `websocket_view::subprotocols`.
    std::optional<std::vector<std::string>> subprotocols{};
    /// Whether an upgrade that agrees on no subprotocol is refused (400)
    /// rather than accepted without one; replaces the view's member.
    std::optional<bool> require_subprotocol{};
};

/** The limits in force on one connection, every option resolved.

    Order of precedence: route override, then the view's class-level member,
    then the library default. `resolve_limits` is the one place that applies it.
*/
struct connection_limits {
    /// Close with 1001 when nothing arrives from the peer for this long; zero never.
    std::chrono::milliseconds receive_timeout;
    /// The largest frame accepted, in bytes; larger closes with 1009.
    std::size_t max_frame_size;
    /// The largest message accepted, in bytes; larger closes with 1009 before
    /// it is buffered. Zero in a view means "same as max_frame_size".
    std::size_t max_message_size;
    /// The bound on bytes queued for sending to this client.
    std::size_t max_send_queue_bytes;
    /// A view sending to itself waits while its queue holds more than this.
    /// Zero in a view means a quarter of max_send_queue_bytes.
    std::size_t send_queue_high_water;
    /// Send a ping this often while the connection is idle; zero never.
    std::chrono::milliseconds ping_interval;
    /// What happens when the queue passes `max_send_queue_bytes`.
    slow_consumer_policy slow_consumer;
    /// Whether permessage-deflate (RFC 7692) is negotiated when offered.
    bool permessage_deflate;
    /// With permessage-deflate, messages smaller than this go uncompressed.
    std::size_t compression_threshold;
    /// Close with 1008 when what is queued for the client makes no progress
    /// for this long (it stopped reading); zero never.
    std::chrono::milliseconds send_timeout;
    /// How fast the client may send, its bursts resolved (never 0 where a
    /// rate is set).
    rate_limit receive_rate;
    /// Close with 3008 "max lifetime" after this long; zero never.
    std::chrono::milliseconds max_lifetime;
    /// `on_expiring` runs this long before the time set by `expire_at`.
    std::chrono::milliseconds expiry_notice;
    /// Close with 1001 "pong timeout" when a ping goes unanswered this long;
    /// zero never.
    std::chrono::milliseconds pong_timeout;
    /// The kernel's send buffer for the connection (`SO_SNDBUF`), in bytes;
    /// zero keeps the system's.
    std::size_t socket_send_buffer;
};

namespace detail {
[[noreturn]] inline void throw_bad_option(std::string const& where, char const* option,
                                          char const* fix)
{
    throw std::invalid_argument(where + ": " + option + " " + fix);
}

/// Resolves every limit for one route and checks them. `where` names the
/// route in error messages.
template <class View>
connection_limits resolve_limits(route_options const& route, std::string const& where)
{
    using std::chrono::ceil;
    using std::chrono::milliseconds;
    connection_limits limits{
        route.receive_timeout.value_or(ceil<milliseconds>(View::receive_timeout)),
        route.max_frame_size.value_or(View::max_frame_size),
        route.max_message_size.value_or(View::max_message_size),
        route.max_send_queue_bytes.value_or(View::max_send_queue_bytes),
        route.send_queue_high_water.value_or(View::send_queue_high_water),
        route.ping_interval.value_or(ceil<milliseconds>(View::ping_interval)),
        route.slow_consumer.value_or(View::slow_consumer),
        route.permessage_deflate.value_or(View::permessage_deflate),
        route.compression_threshold.value_or(View::compression_threshold),
        route.send_timeout.value_or(ceil<milliseconds>(View::send_timeout)),
        route.receive_rate.value_or(View::receive_rate),
        route.max_lifetime.value_or(ceil<milliseconds>(View::max_lifetime)),
        route.expiry_notice.value_or(ceil<milliseconds>(View::expiry_notice)),
        route.pong_timeout.value_or(ceil<milliseconds>(View::pong_timeout)),
        route.socket_send_buffer.value_or(View::socket_send_buffer),
    };
    if (limits.max_message_size == 0)
        limits.max_message_size = limits.max_frame_size;
    if (limits.send_queue_high_water == 0)
        limits.send_queue_high_water = limits.max_send_queue_bytes / 4;
    if (limits.max_frame_size == 0)
        throw_bad_option(where, "max_frame_size", "must be at least 1 byte");
    if (limits.max_message_size < limits.max_frame_size)
        throw_bad_option(where, "max_message_size",
                         "must be at least max_frame_size (or 0 to follow it)");
    if (limits.receive_timeout.count() < 0)
        throw_bad_option(where, "receive_timeout", "must not be negative (0 turns it off)");
    if (limits.send_timeout.count() < 0)
        throw_bad_option(where, "send_timeout", "must not be negative (0 turns it off)");
    if (limits.ping_interval.count() < 0)
        throw_bad_option(where, "ping_interval", "must not be negative (0 turns it off)");
    if (limits.max_send_queue_bytes == 0)
        throw_bad_option(where, "max_send_queue_bytes", "must be at least 1 byte");
    if (limits.send_queue_high_water > limits.max_send_queue_bytes)
        throw_bad_option(where, "send_queue_high_water",
                         "must not exceed max_send_queue_bytes");
    if (limits.max_lifetime.count() < 0)
        throw_bad_option(where, "max_lifetime", "must not be negative (0: no limit)");
    if (limits.expiry_notice.count() < 0)
        throw_bad_option(where, "expiry_notice", "must not be negative");
    if (limits.pong_timeout.count() < 0)
        throw_bad_option(where, "pong_timeout", "must not be negative (0 turns it off)");
    if (limits.pong_timeout.count() > 0 && limits.ping_interval.count() == 0)
        throw_bad_option(where, "pong_timeout",
                         "needs pings to time: set ping_interval too (or pong_timeout to 0)");
    if (limits.socket_send_buffer > static_cast<std::size_t>(std::numeric_limits<int>::max() / 2))
        throw_bad_option(where, "socket_send_buffer",
                         "is too large for the kernel (at most 1 GiB; 0 keeps the system's)");
    auto& rate = limits.receive_rate;
    if (!(rate.messages_per_second >= 0) || !(rate.bytes_per_second >= 0) ||
        !(rate.message_burst >= 0) || !(rate.byte_burst >= 0))
        throw_bad_option(where, "receive_rate",
                         "must not have a negative rate or burst (0 means no limit, or one "
                         "second's worth of burst)");
    if (rate.message_burst > 0 && rate.messages_per_second == 0)
        throw_bad_option(where, "receive_rate",
                         "has a message_burst but no messages_per_second; set the rate too");
    if (rate.byte_burst > 0 && rate.bytes_per_second == 0)
        throw_bad_option(where, "receive_rate",
                         "has a byte_burst but no bytes_per_second; set the rate too");
    if (rate.messages_per_second > 0 && rate.message_burst == 0)
        rate.message_burst = std::max(rate.messages_per_second, 1.0);
    if (rate.message_burst > 0 && rate.message_burst < 1)
        throw_bad_option(where, "receive_rate",
                         "message_burst must be at least 1 message, or 0 for one second's worth");
    if (rate.bytes_per_second > 0 && rate.byte_burst == 0)
        rate.byte_burst = rate.bytes_per_second;
    return limits;
}

/// What a route checks in an upgrade request before asking its view.
struct upgrade_rules {
    /// Browser origins allowed; empty allows all.
    std::vector<std::string> allowed_origins;
    /// Subprotocols spoken, most preferred first.
    std::vector<std::string> subprotocols;
    /// Refuse upgrades that agree on no subprotocol.
    bool require_subprotocol = false;
    /// Whether the view's on_upgrade is asked: false when the route knows
    /// the view keeps websocket_view's, which accepts (see router.hpp).
    bool asks_view = true;
};

/// Whether `name` is an HTTP token (RFC 7230 section 3.2.6), as RFC 6455
/// section 4.1 requires of a subprotocol name.
inline bool is_http_token(std::string_view name)
{
    constexpr std::string_view separators = "()<>@,;:\\\"/[]?={} \t";
    if (name.empty())
        return false;
    for (char c : name)
        if (c <= 0x20 || c >= 0x7f || separators.find(c) != std::string_view::npos)
            return false;
    return true;
}

/// Resolves a route's upgrade rules (route > view) and checks them.
template <class View>
upgrade_rules resolve_upgrade_rules(route_options const& route, std::string const& where)
{
    upgrade_rules rules{route.allowed_origins, {},
                        route.require_subprotocol.value_or(View::require_subprotocol)};
    if (route.subprotocols)
        rules.subprotocols = *route.subprotocols;
    else
        for (std::string_view name : View::subprotocols)
            rules.subprotocols.emplace_back(name);
    for (auto const& name : rules.subprotocols)
        if (!is_http_token(name))
            throw_bad_option(where, "subprotocols",
                             ("has \"" + name +
                              "\", which is not a valid name: use letters, digits and "
                              "!#$%&'*+-.^_`|~ only")
                                 .c_str());
    if (rules.require_subprotocol && rules.subprotocols.empty())
        throw_bad_option(where, "require_subprotocol",
                         "is set but no subprotocols are listed; list them or turn it off");
    return rules;
}

/// Checks server-wide options; throws naming the field and the fix.
inline void check_server_options(server_options const& options)
{
    std::string const where = "mallard::server_options";
    if (options.threads == 0)
        throw_bad_option(where, "threads", "must be at least 1");
    if (options.handshake_timeout.count() <= 0)
        throw_bad_option(where, "handshake_timeout", "must be positive");
    if (options.max_request_bytes < 256)
        throw_bad_option(where, "max_request_bytes",
                         "must be at least 256 bytes to hold an upgrade request");
    if (options.shutdown_grace.count() < 0)
        throw_bad_option(where, "shutdown_grace", "must not be negative");
    for (auto const& policy : options.groups)
        detail::check_group_policy(policy);
    if (!options.static_directory.empty()) {
        std::error_code ec;
        if (!std::filesystem::is_directory(options.static_directory, ec))
            throw_bad_option(where, "static_directory",
                             ("\"" + options.static_directory +
                              "\" is not a readable folder; give an existing folder or leave it empty")
                                 .c_str());
    }
    if (options.plain_port && !options.tls)
        throw_bad_option(where, "plain_port",
                         "only applies with tls set; for ws:// alone use port");
    if (options.plain_port && *options.plain_port != 0 && *options.plain_port == options.port)
        throw_bad_option(where, "plain_port", "must differ from port, which serves wss://");
    if (options.admin_port && *options.admin_port != 0 &&
        (*options.admin_port == options.port ||
         (options.plain_port && *options.admin_port == *options.plain_port)))
        throw_bad_option(where, "admin_port", "must differ from port and plain_port");
    if (!options.status_path.empty() && options.metrics_path.empty())
        throw_bad_option(where, "status_path",
                         "needs metrics_path, which the page reads: set metrics_path too "
                         "(e.g. \"/metrics\")");
    std::pair<std::string const*, char const*> const paths[] = {
        {&options.health_path, "health_path"},
        {&options.readiness_path, "readiness_path"},
        {&options.metrics_path, "metrics_path"},
        {&options.status_path, "status_path"},
    };
    for (auto const& [path, name] : paths) {
        if (path->empty())
            continue;
        if (path->front() != '/')
            throw_bad_option(where, name,
                             ("\"" + *path + "\" must start with '/', e.g. \"/metrics\"").c_str());
        for (auto const& [other, other_name] : paths)
            if (other != path && *other == *path)
                throw_bad_option(where, name,
                                 ("\"" + *path + "\" is also " + other_name + "; give each its own")
                                     .c_str());
    }
    if (options.drain_window.count() < 0)
        throw_bad_option(where, "drain_window", "must not be negative (0 closes all at once)");
    auto const drain_code = static_cast<unsigned>(options.drain_close_code);
    if (options.drain_close_code != close_code::going_away &&
        options.drain_close_code != close_code::service_restart &&
        options.drain_close_code != close_code::try_again_later &&
        (drain_code < 3000 || drain_code > 4999))
        throw_bad_option(where, "drain_close_code",
                         "must be a code a server may send for a stop: 1001, 1012, 1013 or "
                         "3000-4999");
    if (options.drain_retry_after.count() < 0)
        throw_bad_option(where, "drain_retry_after", "must not be negative");
    if (options.memory_budget != 0 && options.memory_budget_timeout.count() <= 0)
        throw_bad_option(where, "memory_budget_timeout",
                         "must be positive (or set memory_budget to 0 for no budget)");
    if (!options.health_path.empty() && options.health_path.front() != '/')
        throw_bad_option(where, "health_path", "must start with '/' (or be empty to turn it off)");
}
} // namespace detail

} // namespace mallard

#endif
