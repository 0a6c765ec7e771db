// SPDX-License-Identifier: BSL-1.0
// mallard_bench_server: the mallard server under test in bench/.
//
//   /ws/echo       echoes every message unchanged, text as text, binary as binary
//   /ws/broadcast  every connection joins the group "all"; each message
//                  received is published to the group, so everyone (the
//                  sender included) gets it
//   /ws/broadcast-history  the same through the group "room:all", which keeps
//                  a history (its last 100 messages, numbered), joined from
//                  a position as a recovering client would
//
// Limits are raised well above what the benchmarks send, so that what is
// measured is the message path, not a policy. Takes --port N (0 = a free
// port), --threads N and --redis URL, and prints
// "listening on ws://127.0.0.1:PORT" first.
//
// --redis redis://HOST:PORT shares the groups with every other server on the
// same Redis (mallard::redis_backplane), so that a publish on one process
// reaches the subscribers of all of them: bench/run's broadcast-redis-2x500.
// It needs mallard::redis (hiredis); without it the option is refused.

#include <mallard/mallard.hpp>
#if MALLARD_BENCH_REDIS
#include <mallard/redis.hpp>
#endif

#include <charconv>
#include <iostream>
#include <string>
#include <string_view>

namespace {

/// Limits for a benchmark: 16 MiB messages, deep send queues.
class bench_view : public mallard::websocket_view {
public:
    static constexpr std::size_t max_frame_size = 16 * 1024 * 1024;
    static constexpr std::size_t max_send_queue_bytes = 64 * 1024 * 1024;
    static constexpr std::size_t send_queue_high_water = 32 * 1024 * 1024;
};

class echo_view : public bench_view {
public:
    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        if (op == mallard::opcode::text)
            co_await send_text(data);
        else
            co_await send_binary(data);
    }
};

class broadcast_view : public bench_view {
public:
    mallard::task<> on_open() override
    {
        join("all");
        co_return;
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        publish("all", std::string(data), op);
        co_return;
    }
};

class history_broadcast_view : public bench_view {
public:
    mallard::task<> on_open() override
    {
        mallard::since const nowhere; // named: see websocket_view::join
        auto const joined = co_await join("room:all", nowhere);
        (void)joined;
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        publish("room:all", std::string(data), op);
        co_return;
    }
};

template <class Number>
bool parse_number(std::string_view text, Number& out)
{
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && ptr == text.data() + text.size();
}

} // namespace

int main(int argc, char** argv)
{
    mallard::server_options options;
    options.port = 8080;
    options.threads = 1;
    options.metrics_path = "/metrics"; // as in production: the counters' cost is measured
    std::string redis_url;
    for (int i = 1; i < argc; ++i) {
        std::string_view const arg = argv[i];
        bool ok = i + 1 < argc;
        if (ok && arg == "--port")
            ok = parse_number(argv[++i], options.port);
        else if (ok && arg == "--threads")
            ok = parse_number(argv[++i], options.threads) && options.threads > 0;
        else if (ok && arg == "--redis")
            redis_url = argv[++i];
        else
            ok = false;
        if (!ok) {
            std::cerr << "usage: mallard_bench_server [--port N] [--threads N] [--redis URL]\n";
            return 2;
        }
    }
    try {
        if (!redis_url.empty()) {
#if MALLARD_BENCH_REDIS
            options.backplane = mallard::make_redis_backplane(redis_url);
#else
            std::cerr << "mallard_bench_server: --redis needs mallard::redis, and this build "
                         "has none (hiredis was not found; Debian: apt-get install "
                         "libhiredis-dev, then configure again)\n";
            return 2;
#endif
        }
        mallard::group_policy rooms;
        rooms.pattern = "room:*";
        rooms.history_size = 100;
        options.groups.push_back(rooms);
        mallard::router urls{
            mallard::path<echo_view>("/ws/echo", "echo"),
            mallard::path<broadcast_view>("/ws/broadcast", "broadcast"),
            mallard::path<history_broadcast_view>("/ws/broadcast-history", "broadcast-history"),
        };
        mallard::server srv{options, std::move(urls)};
        std::cout << "listening on ws://127.0.0.1:" << srv.port() << std::endl;
        srv.run();
    } catch (std::exception const& e) {
        std::cerr << "mallard_bench_server: " << e.what() << '\n';
        return 1;
    }
}
