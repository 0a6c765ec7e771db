// SPDX-License-Identifier: BSL-1.0
/// @file
/// The server's counters and gauges, as numbers and as Prometheus text.
#ifndef MALLARD_SERVER_METRICS_HPP
#define MALLARD_SERVER_METRICS_HPP

#include <mallard/close_reason.hpp>
#include <mallard/detail/config.hpp>
#include <mallard/options.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mallard {

/// The view callbacks whose exceptions are counted apart.
enum class handler_callback {
    on_upgrade, ///< the upgrade was refused with 500
    on_open,    ///< the connection was closed with 1011
    on_receive, ///< the connection was closed with 1011
    on_close,   ///< logged only: the connection had ended
    task,       ///< a task started with `spawn`; closed with 1011
};

/// The number of `handler_callback` values.
inline constexpr std::size_t handler_callback_count = 5;

/// The callback's name as in the view ("on_open"; "task" for a spawned task).
constexpr std::string_view to_string(handler_callback callback) noexcept
{
    switch (callback) {
    case handler_callback::on_upgrade: return "on_upgrade";
    case handler_callback::on_open: return "on_open";
    case handler_callback::on_receive: return "on_receive";
    case handler_callback::on_close: return "on_close";
    case handler_callback::task: return "task";
    }
    return "unknown";
}

/** The upper bounds, in bytes, of the buckets in which connections are
    counted by how much their send queue holds (`route_metrics::send_queue_depth`).
    A last bucket holds the connections over the largest bound.
*/
inline constexpr std::array<std::uint64_t, 7> send_queue_depth_bounds{
    0, 1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024};

/// What one route's connections did; see `server_metrics`.
struct route_metrics {
    /// The route's name, or its pattern when it has no name: the `route`
    /// label of the Prometheus metrics.
    std::string route;
    /// The route's pattern, e.g. "/ws/chat/<room>".
    std::string pattern;
    /// The route's slow-consumer policy, the `policy` label of its drops.
    slow_consumer_policy slow_consumer = slow_consumer_policy::close;
    std::uint64_t connections_open = 0;   ///< WebSocket connections open now
    std::uint64_t connections_opened = 0; ///< upgrades completed
    std::uint64_t messages_in = 0;        ///< messages received from clients
    std::uint64_t bytes_in = 0;           ///< their payload bytes
    std::uint64_t messages_out = 0;       ///< messages written to clients
    std::uint64_t bytes_out = 0;          ///< their payload bytes
    std::uint64_t messages_dropped = 0;   ///< discarded by the slow-consumer policy
    std::uint64_t publishes = 0;          ///< group publishes by the route's views
    /// Times a client went over the route's `receive_rate`: reading paused,
    /// or the connection closed, as `rate_action` says.
    std::uint64_t rate_limited = 0;
    /// The route's action over its `receive_rate`, the `action` label.
    rate_limit_action rate_action = rate_limit_action::pause;
    /// Bytes queued for the route's clients and not yet written, summed, at
    /// the last sample (every connection is looked at ten times a second).
    std::uint64_t send_queue_bytes = 0;
    /// Open connections by their send queue's bytes at the last sample:
    /// element i counts those holding at most `send_queue_depth_bounds[i]`
    /// and more than the bound before it; the last, those over every bound.
    std::array<std::uint64_t, send_queue_depth_bounds.size() + 1> send_queue_depth{};
    /// One count of ended connections.
    struct close_count {
        /// The close code, as `on_close` saw it; 0 for a code outside
        /// 1000-1015, 3000-3015 and 4000-4015, which are counted one by one.
        std::uint16_t code = 0;
        /// Why the connection ended (who closed it, or what failed).
        close_cause cause = close_cause::network_error;
        /// How many connections ended with this code and cause.
        std::uint64_t count = 0;
    };
    /// Ended connections by close code and cause; only pairs that happened.
    std::vector<close_count> closes;
    /// Exceptions thrown by the route's views, by `handler_callback`.
    std::array<std::uint64_t, handler_callback_count> exceptions{};
};

/// What the server's backplane reports; see `backplane`.
struct backplane_metrics {
    /// Whether its links to the other servers are up (always, in process).
    bool up = true;
    std::uint64_t published = 0;  ///< publishes it carried to other servers
    std::uint64_t dropped = 0;    ///< publishes it could not carry
    std::uint64_t reconnects = 0; ///< times a link came back after being lost
};

/// The process's own figures, as Prometheus clients export them (Linux;
/// zero elsewhere).
struct process_metrics {
    std::uint64_t resident_memory_bytes = 0; ///< resident set size, in bytes
    std::uint64_t virtual_memory_bytes = 0;  ///< virtual memory size, in bytes
    std::uint64_t open_fds = 0;              ///< file descriptors open now
    std::uint64_t max_fds = 0;               ///< the limit on open file descriptors
    double cpu_seconds = 0;        ///< user and system
    double start_time_seconds = 0; ///< since the Unix epoch
};

/** Everything the server counts, as `server::metrics()` reads it and its
    `metrics_path` exposes it to Prometheus.

    Counters count since the server was made. Reading them takes no lock on
    a connection's path and stops no event loop: each thread keeps its own
    counts, which are summed here.
*/
struct server_metrics {
    /// One entry per route, in the router's order.
    std::vector<route_metrics> routes;
    /// Upgrade requests refused, by the HTTP status they got (404 for no
    /// route, 403 for an origin, 503 while stopping, your `on_upgrade`'s ...).
    std::map<unsigned, std::uint64_t> upgrades_refused;
    /// Connections in their TLS or HTTP handshake now.
    std::uint64_t handshakes = 0;
    /// Whether the server has begun to drain or stop.
    bool draining = false;
    /// Upgrades refused with 503 because `max_connections` was reached.
    std::uint64_t refused_max_connections = 0;
    /// Upgrades refused with 429 because `max_connections_per_address` was
    /// reached.
    std::uint64_t refused_max_connections_per_address = 0;
    /// Publishes made with `server::publish` (views' publishes are counted
    /// per route).
    std::uint64_t server_publishes = 0;
    /// Groups with a member on this server.
    std::uint64_t groups = 0;
    /// Memberships of those groups on this server (a connection in two
    /// groups counts twice).
    std::uint64_t group_members = 0;
    /// See `server_stats::memory_held`.
    std::uint64_t memory_held = 0;
    /// See `server_stats::connections_paused`.
    std::uint64_t connections_paused = 0;
    /// The backplane's figures (all zero for the in-process one).
    backplane_metrics backplane;
    /// The process's figures.
    process_metrics process;
};

/** `metrics` in the Prometheus text exposition format, version 0.0.4: what
    the server answers at `server_options::metrics_path`. Every metric is
    prefixed `mallard_` but the standard `process_` ones; the README lists
    them with their types and labels.
*/
MALLARD_DECL std::string to_prometheus(server_metrics const& metrics);

} // namespace mallard

#ifdef MALLARD_HEADER_ONLY
#include <mallard/impl/server_metrics.ipp>
#endif

#endif
