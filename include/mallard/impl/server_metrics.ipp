// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_IMPL_SERVER_METRICS_IPP
#define MALLARD_IMPL_SERVER_METRICS_IPP

#include <mallard/server_metrics.hpp>
#include <mallard/version.hpp>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace mallard {

namespace detail {

// Writes the Prometheus text format, version 0.0.4: a "# HELP" and a
// "# TYPE" line per metric, then its samples, "name{label="value"} number".
class exposition_writer {
public:
    explicit exposition_writer(std::string& out) : out_(out) {}

    void family(std::string_view name, std::string_view type, std::string_view help)
    {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    /// A sample: `labels` alternates names and values.
    template <class Number>
    void sample(std::string_view name, std::initializer_list<std::string_view> labels,
                Number value)
    {
        out_ += name;
        if (labels.size() != 0) {
            out_ += '{';
            bool first = true;
            for (auto it = labels.begin(); it != labels.end(); it += 2) {
                if (!first)
                    out_ += ',';
                first = false;
                out_ += *it;
                out_ += "=\"";
                escape(*(it + 1));
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
        number(value);
        out_ += '\n';
    }

private:
    // Label values escape backslash, double quote and line feed.
    void escape(std::string_view value)
    {
        for (char const c : value) {
            if (c == '\\')
                out_ += "\\\\";
            else if (c == '"')
                out_ += "\\\"";
            else if (c == '\n')
                out_ += "\\n";
            else
                out_ += c;
        }
    }

    template <class Number>
    void number(Number value)
    {
        char text[32];
        auto const end = std::to_chars(text, text + sizeof text, value).ptr;
        out_.append(text, end);
    }

    std::string& out_;
};

/// A close cause as a label value: "peer_closed".
inline std::string cause_label(close_cause cause)
{
    std::string label(to_string(cause));
    for (auto& c : label)
        if (c == ' ')
            c = '_';
    return label;
}

inline std::string_view policy_label(slow_consumer_policy policy)
{
    switch (policy) {
    case slow_consumer_policy::close: return "close";
    case slow_consumer_policy::drop_oldest: return "drop_oldest";
    case slow_consumer_policy::keep_latest: return "keep_latest";
    }
    return "unknown";
}

} // namespace detail

MALLARD_DECL std::string to_prometheus(server_metrics const& metrics)
{
    std::string out;
    out.reserve(4096 + 2048 * metrics.routes.size());
    detail::exposition_writer w(out);
    auto const& routes = metrics.routes;
    // One metric with a sample per route.
    auto per_route = [&](std::string_view name, std::string_view type, std::string_view help,
                         auto value_of) {
        w.family(name, type, help);
        for (auto const& r : routes)
            w.sample(name, {"route", r.route}, value_of(r));
    };

    w.family("mallard_build_info", "gauge", "The mallard version serving, as a label.");
    w.sample("mallard_build_info",
             {"version", std::to_string(MALLARD_VERSION_MAJOR) + "." +
                             std::to_string(MALLARD_VERSION_MINOR) + "." +
                             std::to_string(MALLARD_VERSION_PATCH)},
             1);

    per_route("mallard_connections_open", "gauge", "WebSocket connections open now.",
              [](route_metrics const& r) { return r.connections_open; });
    per_route("mallard_connections_opened_total", "counter",
              "WebSocket upgrades completed.",
              [](route_metrics const& r) { return r.connections_opened; });
    w.family("mallard_connections_closed_total", "counter",
             "WebSocket connections ended, by close code (0: outside 1000-1015, 3000-3015 "
             "and 4000-4015) and cause.");
    for (auto const& r : routes)
        for (auto const& c : r.closes)
            w.sample("mallard_connections_closed_total",
                     {"route", r.route, "code", std::to_string(c.code), "cause",
                      detail::cause_label(c.cause)},
                     c.count);
    w.family("mallard_upgrades_refused_total", "counter",
             "WebSocket upgrade requests answered with an HTTP error, by status.");
    for (auto const& [status, count] : metrics.upgrades_refused)
        w.sample("mallard_upgrades_refused_total", {"status", std::to_string(status)}, count);
    w.family("mallard_admission_refused_total", "counter",
             "Upgrades refused by an admission limit: max_connections (503) or "
             "max_connections_per_address (429).");
    w.sample("mallard_admission_refused_total", {"limit", "max_connections"},
             metrics.refused_max_connections);
    w.sample("mallard_admission_refused_total", {"limit", "max_connections_per_address"},
             metrics.refused_max_connections_per_address);
    w.family("mallard_handshakes", "gauge", "Connections in their TLS or HTTP handshake now.");
    w.sample("mallard_handshakes", {}, metrics.handshakes);
    w.family("mallard_draining", "gauge", "1 once the server has begun to drain or stop.");
    w.sample("mallard_draining", {}, metrics.draining ? 1 : 0);

    per_route("mallard_received_messages_total", "counter", "Messages received from clients.",
              [](route_metrics const& r) { return r.messages_in; });
    per_route("mallard_received_bytes_total", "counter",
              "Payload bytes of the messages received from clients.",
              [](route_metrics const& r) { return r.bytes_in; });
    per_route("mallard_sent_messages_total", "counter", "Messages written to clients.",
              [](route_metrics const& r) { return r.messages_out; });
    per_route("mallard_sent_bytes_total", "counter",
              "Payload bytes of the messages written to clients.",
              [](route_metrics const& r) { return r.bytes_out; });

    per_route("mallard_send_queue_bytes", "gauge",
              "Bytes queued for clients and not yet written, at the last sample "
              "(ten a second).",
              [](route_metrics const& r) { return r.send_queue_bytes; });
    w.family("mallard_send_queue_depth_bytes", "histogram",
             "Open connections by the bytes their send queue held at the last sample: a "
             "snapshot, not a count since start.");
    for (auto const& r : routes) {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < send_queue_depth_bounds.size(); ++i) {
            cumulative += r.send_queue_depth[i];
            w.sample("mallard_send_queue_depth_bytes_bucket",
                     {"route", r.route, "le", std::to_string(send_queue_depth_bounds[i])},
                     cumulative);
        }
        cumulative += r.send_queue_depth.back();
        w.sample("mallard_send_queue_depth_bytes_bucket", {"route", r.route, "le", "+Inf"},
                 cumulative);
        w.sample("mallard_send_queue_depth_bytes_sum", {"route", r.route}, r.send_queue_bytes);
        w.sample("mallard_send_queue_depth_bytes_count", {"route", r.route}, cumulative);
    }
    w.family("mallard_slow_consumer_dropped_messages_total", "counter",
             "Messages discarded by a route's slow-consumer policy.");
    for (auto const& r : routes)
        w.sample("mallard_slow_consumer_dropped_messages_total",
                 {"route", r.route, "policy", detail::policy_label(r.slow_consumer)},
                 r.messages_dropped);
    w.family("mallard_slow_consumer_closes_total", "counter",
             "Connections closed because their send queue passed its bound.");
    for (auto const& r : routes) {
        std::uint64_t closes = 0;
        for (auto const& c : r.closes)
            if (c.cause == close_cause::slow_consumer)
                closes += c.count;
        w.sample("mallard_slow_consumer_closes_total",
                 {"route", r.route, "policy", detail::policy_label(r.slow_consumer)}, closes);
    }
    w.family("mallard_handler_exceptions_total", "counter",
             "Exceptions thrown by views' callbacks and spawned tasks, by callback.");
    for (auto const& r : routes)
        for (std::size_t i = 0; i < handler_callback_count; ++i)
            w.sample("mallard_handler_exceptions_total",
                     {"route", r.route, "callback", to_string(static_cast<handler_callback>(i))},
                     r.exceptions[i]);

    w.family("mallard_rate_limited_total", "counter",
             "Times a client sent faster than its route's receive_rate: reading paused, or the "
             "connection closed with 1008, by the route's action.");
    for (auto const& r : routes)
        w.sample("mallard_rate_limited_total",
                 {"route", r.route, "action",
                  r.rate_action == rate_limit_action::pause ? "pause" : "close"},
                 r.rate_limited);

    per_route("mallard_group_publishes_total", "counter", "Group publishes by views.",
              [](route_metrics const& r) { return r.publishes; });
    w.family("mallard_server_publishes_total", "counter", "Group publishes by server::publish.");
    w.sample("mallard_server_publishes_total", {}, metrics.server_publishes);
    w.family("mallard_groups", "gauge", "Groups with a member on this server.");
    w.sample("mallard_groups", {}, metrics.groups);
    w.family("mallard_group_members", "gauge", "Memberships of groups on this server.");
    w.sample("mallard_group_members", {}, metrics.group_members);

    w.family("mallard_memory_held_bytes", "gauge",
             "Bytes the connections held at the memory budget's last look.");
    w.sample("mallard_memory_held_bytes", {}, metrics.memory_held);
    w.family("mallard_connections_paused", "gauge",
             "Connections whose reading the memory budget has paused.");
    w.sample("mallard_connections_paused", {}, metrics.connections_paused);

    w.family("mallard_backplane_up", "gauge",
             "1 when the backplane's links to the other servers are up.");
    w.sample("mallard_backplane_up", {}, metrics.backplane.up ? 1 : 0);
    w.family("mallard_backplane_published_total", "counter",
             "Publishes the backplane handed on towards the other servers.");
    w.sample("mallard_backplane_published_total", {}, metrics.backplane.published);
    w.family("mallard_backplane_dropped_total", "counter",
             "Publishes the backplane could not carry to the other servers.");
    w.sample("mallard_backplane_dropped_total", {}, metrics.backplane.dropped);
    w.family("mallard_backplane_reconnects_total", "counter",
             "Times a backplane link came up after a failure.");
    w.sample("mallard_backplane_reconnects_total", {}, metrics.backplane.reconnects);

    auto const& p = metrics.process;
    w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    w.sample("process_resident_memory_bytes", {}, p.resident_memory_bytes);
    w.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    w.sample("process_virtual_memory_bytes", {}, p.virtual_memory_bytes);
    w.family("process_open_fds", "gauge", "Number of open file descriptors.");
    w.sample("process_open_fds", {}, p.open_fds);
    w.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    w.sample("process_max_fds", {}, p.max_fds);
    w.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    w.sample("process_cpu_seconds_total", {}, p.cpu_seconds);
    w.family("process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.");
    w.sample("process_start_time_seconds", {}, p.start_time_seconds);
    return out;
}

} // namespace mallard

#endif
