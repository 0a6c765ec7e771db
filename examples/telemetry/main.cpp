// SPDX-License-Identifier: BSL-1.0
// Device telemetry: thousands of devices keep a connection each and stream
// small binary readings; the server keeps per-minute statistics and serves
// them to subscribers on a second route.
//
// Devices: /ws/device/<id>. Each binary message holds one or more readings of
// 8 bytes, little-endian: uint32 time (seconds since the Unix epoch, by the
// device's clock), int32 value (in the sensor's unit, e.g. milli-degrees).
// A text message closes with 1003, a length that is not a multiple of 8 with
// 1007. The server pings every --ping-interval-ms (default 20000); a device
// that leaves a ping unanswered for --pong-timeout-ms (default 10000) is
// gone (off the network, its socket never closed) and is closed.
//
// Subscribers: /ws/stats, JSON text messages.
//   client -> server  {"type":"query","minute":M}
//   server -> client  {"type":"minute","minute":M,"count":N,"sum":S,"min":A,"max":B,
//                      "devices":D}      (count 0, no min and max, for a minute without data)
//                     {"type":"error","error":...}
// Minute M is the minute of Unix time M * 60 to M * 60 + 59. Every second a
// task the server owns publishes, to every subscriber, the minutes that
// changed since its last look and ended at least --grace-ms (default 5000)
// ago: a minute's summary once its devices have reported, and again if a
// late reading changes it. The last --keep-minutes (default 60) minutes are
// kept; readings for older or future minutes are not counted.

#include <mallard/json.hpp>
#include <mallard/mallard.hpp>

#include "../common/example_args.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace json = boost::json;

namespace {

constexpr std::size_t reading_size = 8;

struct reading {
    std::uint32_t time = 0; // seconds since the Unix epoch
    std::int32_t value = 0;
};

std::uint32_t little_endian_u32(unsigned char const* p)
{
    return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
           std::uint32_t{p[3]} << 24;
}

/// The readings in a device's message (its length a multiple of 8).
std::vector<reading> parse_readings(std::string_view data)
{
    std::vector<reading> out;
    out.reserve(data.size() / reading_size);
    auto const* bytes = reinterpret_cast<unsigned char const*>(data.data());
    for (std::size_t at = 0; at + reading_size <= data.size(); at += reading_size)
        out.push_back({little_endian_u32(bytes + at),
                       static_cast<std::int32_t>(little_endian_u32(bytes + at + 4))});
    return out;
}

std::int64_t unix_minute_now()
{
    using namespace std::chrono;
    return duration_cast<minutes>(system_clock::now().time_since_epoch()).count();
}

/// One minute's statistics.
struct minute_stats {
    std::uint64_t count = 0;
    std::int64_t sum = 0;
    std::int32_t min = 0, max = 0;
    std::unordered_set<std::string> devices;
};

json::object minute_message(std::int64_t minute, minute_stats const* stats)
{
    json::object out{{"type", "minute"}, {"minute", minute}, {"count", 0}, {"sum", 0},
                     {"devices", 0}};
    if (stats && stats->count != 0) {
        out["count"] = stats->count;
        out["sum"] = stats->sum;
        out["min"] = stats->min;
        out["max"] = stats->max;
        out["devices"] = stats->devices.size();
    }
    return out;
}

/// Every device's readings, by minute; shared by all the server's threads.
class telemetry_store {
public:
    explicit telemetry_store(std::int64_t keep_minutes) : keep_minutes_(keep_minutes) {}

    /// Counts `readings` from `device`; those outside the kept minutes are not.
    void add(std::string const& device, std::vector<reading> const& readings)
    {
        auto const now = unix_minute_now();
        std::lock_guard lock(mutex_);
        for (auto const& r : readings) {
            std::int64_t const minute = r.time / 60;
            if (minute <= now - keep_minutes_ || minute > now)
                continue;
            auto& stats = minutes_[minute];
            if (stats.count == 0 || r.value < stats.min)
                stats.min = r.value;
            if (stats.count == 0 || r.value > stats.max)
                stats.max = r.value;
            ++stats.count;
            stats.sum += r.value;
            stats.devices.insert(device);
            changed_.insert(minute);
        }
        while (!minutes_.empty() && minutes_.begin()->first <= now - keep_minutes_)
            minutes_.erase(minutes_.begin());
    }

    /// The message for a subscriber's query of `minute`.
    std::string query(std::int64_t minute) const
    {
        std::lock_guard lock(mutex_);
        auto const found = minutes_.find(minute);
        return json::serialize(minute_message(minute, found == minutes_.end() ? nullptr : &found->second));
    }

    /// The messages for the minutes that changed and ended before
    /// `ended_before` (a minute number), oldest first; they count as told.
    std::vector<std::string> take_finished(std::int64_t ended_before)
    {
        std::vector<std::string> out;
        std::lock_guard lock(mutex_);
        for (auto it = changed_.begin(); it != changed_.end() && *it < ended_before;) {
            auto const found = minutes_.find(*it);
            if (found != minutes_.end())
                out.push_back(json::serialize(minute_message(*it, &found->second)));
            it = changed_.erase(it);
        }
        return out;
    }

private:
    std::int64_t const keep_minutes_;
    mutable std::mutex mutex_;
    std::map<std::int64_t, minute_stats> minutes_;
    std::set<std::int64_t> changed_; // since the publisher last looked
};

/// A device: readings in, nothing out but pongs.
class device_view : public mallard::websocket_view {
public:
    static constexpr std::size_t max_frame_size = 64 * 1024; // 8,192 readings at once

    explicit device_view(telemetry_store& store) : store_(store) {}

    mallard::task<> on_open() override
    {
        id_ = request().path_param("id");
        co_return;
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        if (op != mallard::opcode::binary)
            close(mallard::close_code::unsupported_data, "readings are binary");
        else if (data.empty() || data.size() % reading_size != 0)
            close(mallard::close_code::invalid_payload, "readings are 8 bytes each");
        else
            store_.add(id_, parse_readings(data));
        co_return;
    }

private:
    telemetry_store& store_;
    std::string id_;
};

/// The minute asked for in {"type":"query","minute":M}, if that is what `data` is.
std::optional<std::int64_t> queried_minute(std::string_view data)
{
    boost::system::error_code ec;
    auto const value = json::parse(data, ec);
    auto const* object = value.if_object();
    if (ec || !object)
        return std::nullopt;
    auto const* type = object->if_contains("type");
    auto const* minute = object->if_contains("minute");
    if (!type || *type != "query" || !minute || !minute->is_int64())
        return std::nullopt;
    return minute->as_int64();
}

/// A subscriber: hears every finished minute, and asks for any minute.
class stats_view : public mallard::websocket_view {
public:
    explicit stats_view(telemetry_store& store) : store_(store) {}

    mallard::task<> on_open() override
    {
        join("stats");
        co_return;
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        auto const minute = op == mallard::opcode::text ? queried_minute(data) : std::nullopt;
        if (minute)
            co_await send_text(store_.query(*minute));
        else
            co_await send_text(R"({"type":"error","error":"expected {\"type\":\"query\",\"minute\":M}"})");
    }

private:
    telemetry_store& store_;
};

/// Once a second, publishes the minutes that changed and have ended `grace` ago.
mallard::task<> publish_finished_minutes(mallard::server& srv, telemetry_store& store,
                                         std::chrono::milliseconds grace)
{
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    for (;;) {
        timer.expires_after(std::chrono::seconds{1});
        co_await timer.async_wait(boost::asio::use_awaitable);
        using namespace std::chrono;
        auto const settled = system_clock::now() - grace;
        auto const current = duration_cast<minutes>(settled.time_since_epoch()).count();
        for (auto& message : store.take_finished(current))
            srv.publish("stats", std::move(message));
    }
}

} // namespace

int main(int argc, char** argv)
{
    auto args = examples::parse_args(argc, argv, "mallard_telemetry", {},
                                     {"--ping-interval-ms", "--pong-timeout-ms", "--grace-ms",
                                      "--keep-minutes"});
    if (!args)
        return 2;
    unsigned ping_ms = 0, pong_ms = 0, grace_ms = 0, keep_minutes = 0;
    if (!examples::parse_number(args->value("--ping-interval-ms", "20000"), ping_ms) || ping_ms == 0 ||
        !examples::parse_number(args->value("--pong-timeout-ms", "10000"), pong_ms) ||
        !examples::parse_number(args->value("--grace-ms", "5000"), grace_ms) ||
        !examples::parse_number(args->value("--keep-minutes", "60"), keep_minutes) ||
        keep_minutes == 0) {
        std::cerr << "mallard_telemetry: --ping-interval-ms and --keep-minutes take positive "
                     "numbers, --pong-timeout-ms (0: none) and --grace-ms numbers\n";
        return 2;
    }
    try {
        telemetry_store store(keep_minutes);
        mallard::router urls{
            mallard::path("/ws/device/<id>", [&store] { return std::make_unique<device_view>(store); },
                          "device",
                          {.ping_interval = std::chrono::milliseconds{ping_ms},
                           .pong_timeout = std::chrono::milliseconds{pong_ms}}),
            mallard::path("/ws/stats", [&store] { return std::make_unique<stats_view>(store); },
                          "stats"),
        };
        mallard::server srv{args->options, std::move(urls)};
        srv.spawn(publish_finished_minutes(srv, store, std::chrono::milliseconds{grace_ms}));
        examples::announce(srv, *args);
        srv.run();
    } catch (std::exception const& e) {
        std::cerr << "mallard_telemetry: " << e.what() << '\n';
        return 1;
    }
}
