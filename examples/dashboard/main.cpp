// SPDX-License-Identifier: BSL-1.0
// A live dashboard: the server samples this machine ten times a second
// (--interval-ms, default 100) and publishes each sample to every viewer; the
// bundled page (examples/dashboard/www, served at /) draws line charts of it.
// A viewer that falls behind gets the newest sample, never a backlog: the
// route's slow-consumer policy is keep_latest, and the kernel's send buffer
// is kept small so that the backlog stays where the policy reaches it.
//
// Protocol, JSON text messages, server -> client only, on /ws/dashboard:
//   {"type":"history","samples":[SAMPLE,...]}   first, the last --history
//                                               samples (default 300), oldest first
//   SAMPLE = {"type":"sample","seq":N,"time":MS,"cpu":PERCENT,"memory":PERCENT,
//             "load":LOAD1,"rx":BYTES_PER_S,"tx":BYTES_PER_S}
// seq counts samples from 1; a viewer that fell behind sees it jump. cpu is
// the share of every core busy since the last sample, memory the share not
// available (MemAvailable), load the 1-minute load average, rx and tx the
// bytes per second received and sent on every interface but loopback.

#include <mallard/json.hpp>
#include <mallard/mallard.hpp>

#include "../common/example_args.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace json = boost::json;

namespace {

/// The group every sample is published to; it keeps the last --history.
constexpr auto samples_group = "samples";

/// The machine's counters at one moment, from /proc.
struct counters {
    std::uint64_t cpu_busy = 0, cpu_total = 0; // jiffies since boot
    std::uint64_t memory_total = 0, memory_available = 0; // KiB
    double load1 = 0;
    std::uint64_t rx = 0, tx = 0; // bytes since boot, every interface but lo
};

counters read_counters()
{
    counters c;
    {
        std::ifstream stat("/proc/stat");
        std::string cpu;
        std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                      steal = 0;
        stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
        c.cpu_busy = user + nice + system + irq + softirq + steal;
        c.cpu_total = c.cpu_busy + idle + iowait;
    }
    {
        std::ifstream meminfo("/proc/meminfo");
        std::string key, unit;
        std::uint64_t value = 0;
        while (meminfo >> key >> value >> unit) {
            if (key == "MemTotal:")
                c.memory_total = value;
            else if (key == "MemAvailable:")
                c.memory_available = value;
        }
    }
    std::ifstream("/proc/loadavg") >> c.load1;
    {
        std::ifstream dev("/proc/net/dev");
        std::string line;
        std::getline(dev, line); // two header lines
        std::getline(dev, line);
        while (std::getline(dev, line)) {
            auto const colon = line.find(':');
            if (colon == std::string::npos)
                continue;
            std::istringstream name(line.substr(0, colon));
            std::string interface;
            name >> interface;
            if (interface == "lo")
                continue;
            std::istringstream fields(line.substr(colon + 1));
            std::uint64_t rx = 0, skip = 0, tx = 0;
            fields >> rx;
            for (int i = 0; i < 7; ++i)
                fields >> skip;
            fields >> tx;
            c.rx += rx;
            c.tx += tx;
        }
    }
    return c;
}

/// The sample between two readings `seconds` apart.
std::string sample_message(counters const& before, counters const& now, double seconds,
                           std::uint64_t seq)
{
    auto const busy = static_cast<double>(now.cpu_busy - before.cpu_busy);
    auto const total = static_cast<double>(now.cpu_total - before.cpu_total);
    auto const memory = now.memory_total == 0 ? 0.0
                        : 100.0 * static_cast<double>(now.memory_total - now.memory_available) /
                              static_cast<double>(now.memory_total);
    auto const millis = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch()).count();
    return json::serialize(json::object{
        {"type", "sample"},
        {"seq", seq},
        {"time", millis},
        {"cpu", total > 0 ? 100.0 * busy / total : 0.0},
        {"memory", memory},
        {"load", now.load1},
        {"rx", static_cast<double>(now.rx - before.rx) / seconds},
        {"tx", static_cast<double>(now.tx - before.tx) / seconds},
    });
}

/// Samples every `interval` and publishes to the samples group, until the server stops.
mallard::task<> sample_machine(mallard::server& srv, std::chrono::milliseconds interval)
{
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    auto before = read_counters();
    auto then = std::chrono::steady_clock::now();
    for (std::uint64_t seq = 1;; ++seq) {
        timer.expires_at(then + interval);
        co_await timer.async_wait(boost::asio::use_awaitable);
        auto const now = std::chrono::steady_clock::now();
        auto const current = read_counters();
        auto const seconds = std::chrono::duration<double>(now - then).count();
        srv.publish(samples_group, sample_message(before, current, seconds, seq));
        before = current;
        then = now;
    }
}

/// {"type":"history","samples":[...]}: the history as one message, so that
/// keep_latest cannot replace part of it with a newer sample.
std::string history_message(mallard::group_history const& history)
{
    std::string out = R"({"type":"history","samples":[)";
    for (auto const& entry : history.messages) {
        if (&entry != &history.messages.front())
            out += ',';
        out += *entry.payload;
    }
    out += "]}";
    return out;
}

class dashboard_view : public mallard::websocket_view {
public:
    // A viewer behind by a sample gets the newest one instead.
    static constexpr auto slow_consumer = mallard::slow_consumer_policy::keep_latest;
    // Twice this in the kernel (it doubles it) is about 100 samples: without
    // it Linux would take up to 4 MiB, minutes of samples, before the policy
    // ever saw the viewer fall behind.
    static constexpr std::size_t socket_send_buffer = 8 * 1024;
    // The view's own sends (the history) wait until they are written, so no
    // sample can overtake and replace the history before it leaves.
    static constexpr std::size_t send_queue_high_water = 1;

    mallard::task<> on_open() override
    {
        auto const past = co_await history(samples_group);
        auto replay = history_message(past);
        co_await send_text(std::move(replay));
        // Samples published since the history was read come back here, then
        // every later one live.
        mallard::since const after_history{past.position.offset, past.position.epoch};
        auto const joined = co_await join(samples_group, after_history);
        for (auto const& entry : joined.messages)
            co_await send_text(entry.payload);
    }
};

} // namespace

int main(int argc, char** argv)
{
    auto args = examples::parse_args(argc, argv, "mallard_dashboard", {},
                                     {"--www", "--interval-ms", "--history"});
    if (!args)
        return 2;
    unsigned interval_ms = 0, history_size = 0;
    if (!examples::parse_number(args->value("--interval-ms", "100"), interval_ms) ||
        interval_ms == 0 || !examples::parse_number(args->value("--history", "300"), history_size) ||
        history_size == 0) {
        std::cerr << "mallard_dashboard: --interval-ms and --history take positive numbers\n";
        return 2;
    }
    args->options.static_directory = args->value("--www", MALLARD_DASHBOARD_WWW);
    args->options.groups.push_back({.pattern = samples_group, .history_size = history_size});
    try {
        mallard::router urls{mallard::path<dashboard_view>("/ws/dashboard", "dashboard")};
        mallard::server srv{args->options, std::move(urls)};
        srv.spawn(sample_machine(srv, std::chrono::milliseconds{interval_ms}));
        examples::announce(srv, *args);
        srv.run();
    } catch (std::exception const& e) {
        std::cerr << "mallard_dashboard: " << e.what() << '\n';
        return 1;
    }
}
