// SPDX-License-Identifier: BSL-1.0
// mallard_game_bots: bot players for the game example (examples/game), and
// what they measure: how evenly its ticks arrive.
//
// --bots N connections join one room of a running mallard_game; each holds
// a new random set of keys every 100 ms, as a player would, and times every
// snapshot it receives. Like mallard_wsload: plain Boost.Asio on one thread,
// raw TCP sockets, the upgrade written by hand, frames parsed by hand, so
// that the bots spend their time in the sockets.
//
// Measured after --warmup seconds, for --duration seconds:
//   jitter   per bot, how far each snapshot's arrival is from one tick
//            period after the one before (|gap - ticks * period|, in µs)
//   spread   per tick, from the first bot to receive it to the last
//   skipped  ticks a bot never received (keep_latest replaced them)
// The last line is machine-readable:
//   RESULT bots=200 tick_hz=30 snapshots=... jitter_p50_us=... jitter_p99_us=...
//          jitter_max_us=... spread_p50_us=... spread_p99_us=... skipped=...
//          server_cpu_pct=... errors=0
//
// usage: mallard_game_bots --port N [--bots 200] [--tick-hz 30] [--room bench]
//                          [--duration 10] [--warmup 2] [--server-pid PID]

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;

struct options {
    unsigned short port = 0;
    unsigned bots = 200;
    unsigned tick_hz = 30;
    std::string room = "bench";
    double duration = 10;
    double warmup = 2;
    int server_pid = 0;
};

/// What every bot records while the measured window is open.
struct measurements {
    bool open = false;
    std::vector<double> jitter_us;
    std::map<std::uint32_t, std::pair<clock_type::time_point, clock_type::time_point>> tick_seen; // first, last
    std::uint64_t snapshots = 0;
    std::uint64_t skipped = 0;
    std::uint64_t errors = 0;
};

class bot : public std::enable_shared_from_this<bot> {
public:
    bot(net::io_context& io, options const& o, measurements& m, unsigned index)
        : socket_(io), input_timer_(io), options_(o), m_(m), random_(index * 7919 + 1)
    {
    }

    void start()
    {
        auto self = shared_from_this();
        socket_.async_connect({net::ip::make_address("127.0.0.1"), options_.port},
                              [self](error_code ec) {
                                  if (ec)
                                      return self->fail();
                                  self->socket_.set_option(tcp::no_delay(true));
                                  self->upgrade();
                              });
    }

private:
    void upgrade()
    {
        request_ = "GET /ws/game/" + options_.room + "?name=bot HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        auto self = shared_from_this();
        net::async_write(socket_, net::buffer(request_), [self](error_code ec, std::size_t) {
            if (ec)
                return self->fail();
            net::async_read_until(self->socket_, self->handshake_, "\r\n\r\n",
                                  [self](error_code ec, std::size_t header_bytes) {
                                      if (ec)
                                          return self->fail();
                                      std::string_view head(
                                          static_cast<char const*>(self->handshake_.data().data()),
                                          header_bytes);
                                      if (!head.starts_with("HTTP/1.1 101"))
                                          return self->fail();
                                      // What came behind the answer is frames already.
                                      auto const rest = self->handshake_.data();
                                      self->frames_.append(static_cast<char const*>(rest.data()) + header_bytes,
                                                           rest.size() - header_bytes);
                                      self->parse(clock_type::now());
                                      self->read();
                                      self->next_input();
                                  });
        });
    }

    void read()
    {
        auto self = shared_from_this();
        socket_.async_read_some(net::buffer(chunk_), [self](error_code ec, std::size_t n) {
            if (ec)
                return self->fail();
            self->frames_.append(self->chunk_.data(), n);
            self->parse(clock_type::now());
            self->read();
        });
    }

    // Every whole frame in frames_ (a server's frames are unmasked).
    void parse(clock_type::time_point arrived)
    {
        std::size_t at = 0;
        for (;;) {
            auto const* p = reinterpret_cast<unsigned char const*>(frames_.data()) + at;
            std::size_t const available = frames_.size() - at;
            if (available < 2)
                break;
            std::size_t header = 2;
            std::uint64_t length = p[1] & 0x7F;
            if (length == 126) {
                if (available < 4)
                    break;
                length = std::uint64_t{p[2]} << 8 | p[3];
                header = 4;
            } else if (length == 127) {
                if (available < 10)
                    break;
                length = 0;
                for (int i = 0; i < 8; ++i)
                    length = length << 8 | p[2 + i];
                header = 10;
            }
            if (available < header + length)
                break;
            if ((p[0] & 0x0F) == 0x2 && length >= 5)
                snapshot(p + header, arrived);
            at += header + static_cast<std::size_t>(length);
        }
        frames_.erase(0, at);
    }

    void snapshot(unsigned char const* payload, clock_type::time_point arrived)
    {
        std::uint32_t const tick = std::uint32_t{payload[1]} | std::uint32_t{payload[2]} << 8 |
                                   std::uint32_t{payload[3]} << 16 | std::uint32_t{payload[4]} << 24;
        if (m_.open && last_tick_ != 0 && tick > last_tick_) {
            using namespace std::chrono;
            auto const gap = duration<double, std::micro>(arrived - last_arrival_).count();
            auto const expected = 1e6 * (tick - last_tick_) / options_.tick_hz;
            m_.jitter_us.push_back(std::abs(gap - expected));
            m_.skipped += tick - last_tick_ - 1;
            ++m_.snapshots;
            auto [seen, fresh] = m_.tick_seen.try_emplace(tick, arrived, arrived);
            if (!fresh)
                seen->second.second = arrived;
        }
        last_tick_ = tick;
        last_arrival_ = arrived;
    }

    // A new set of keys every 100 ms (the first after a random part of it,
    // so that the bots' inputs spread over time).
    void next_input()
    {
        auto const wait = first_input_ ? std::chrono::milliseconds{random_() % 100}
                                       : std::chrono::milliseconds{100};
        first_input_ = false;
        input_timer_.expires_after(wait);
        auto self = shared_from_this();
        input_timer_.async_wait([self](error_code ec) {
            if (ec)
                return;
            self->send_input(static_cast<std::uint8_t>(self->random_() % 16));
            self->next_input();
        });
    }

    void send_input(std::uint8_t keys)
    {
        if (writing_)
            return; // the last input is still on its way: this one can wait for the next
        std::array<std::uint8_t, 4> mask{};
        for (auto& b : mask)
            b = static_cast<std::uint8_t>(random_());
        input_ = {0x82, 0x81, mask[0], mask[1], mask[2], mask[3],
                  static_cast<std::uint8_t>(keys ^ mask[0])};
        writing_ = true;
        auto self = shared_from_this();
        net::async_write(socket_, net::buffer(input_), [self](error_code ec, std::size_t) {
            self->writing_ = false;
            if (ec)
                self->fail();
        });
    }

    void fail()
    {
        if (failed_)
            return;
        failed_ = true;
        ++m_.errors;
        input_timer_.cancel();
        error_code ignored;
        socket_.close(ignored);
    }

    tcp::socket socket_;
    net::steady_timer input_timer_;
    options const& options_;
    measurements& m_;
    std::minstd_rand random_;
    std::string request_;
    net::streambuf handshake_;
    std::array<char, 64 * 1024> chunk_{};
    std::string frames_;
    std::array<std::uint8_t, 7> input_{};
    bool writing_ = false;
    bool first_input_ = true;
    bool failed_ = false;
    std::uint32_t last_tick_ = 0;
    clock_type::time_point last_arrival_{};
};

double percentile(std::vector<double> values, double p)
{
    if (values.empty())
        return 0;
    auto const at = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
    std::nth_element(values.begin(), values.begin() + static_cast<long>(at), values.end());
    return values[at];
}

/// utime + stime of a process, in seconds.
double cpu_seconds(int pid)
{
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto const close = text.rfind(')');
    if (close == std::string::npos)
        return 0;
    std::vector<std::string> fields;
    std::string field;
    for (char c : text.substr(close + 2)) {
        if (c == ' ') {
            fields.push_back(field);
            field.clear();
        } else {
            field += c;
        }
    }
    if (fields.size() < 13)
        return 0;
    // Fields 14 and 15 of the file: the 12th and 13th after the name.
    return (std::stod(fields[11]) + std::stod(fields[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

bool parse_args(int argc, char** argv, options& o)
{
    for (int i = 1; i < argc; ++i) {
        std::string_view const arg = argv[i];
        if (i + 1 >= argc) {
            std::cerr << "mallard_game_bots: " << arg << " needs a value\n";
            return false;
        }
        std::string_view const value = argv[++i];
        auto number = [&](auto& out) {
            auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
            return ec == std::errc{} && ptr == value.data() + value.size();
        };
        bool ok = true;
        if (arg == "--port")
            ok = number(o.port);
        else if (arg == "--bots")
            ok = number(o.bots) && o.bots > 0;
        else if (arg == "--tick-hz")
            ok = number(o.tick_hz) && o.tick_hz > 0;
        else if (arg == "--room")
            o.room = value;
        else if (arg == "--duration")
            ok = number(o.duration) && o.duration > 0;
        else if (arg == "--warmup")
            ok = number(o.warmup) && o.warmup >= 0;
        else if (arg == "--server-pid")
            ok = number(o.server_pid);
        else
            ok = false;
        if (!ok) {
            std::cerr << "mallard_game_bots: bad option " << arg << ' ' << value << "\n"
                      << "usage: mallard_game_bots --port N [--bots 200] [--tick-hz 30] [--room bench]"
                         " [--duration 10] [--warmup 2] [--server-pid PID]\n";
            return false;
        }
    }
    if (o.port == 0) {
        std::cerr << "mallard_game_bots: --port is required\n";
        return false;
    }
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    options o;
    if (!parse_args(argc, argv, o))
        return 2;
    net::io_context io(1);
    measurements m;
    std::vector<std::shared_ptr<bot>> bots;
    for (unsigned i = 0; i < o.bots; ++i) {
        bots.push_back(std::make_shared<bot>(io, o, m, i));
        bots.back()->start();
    }
    using namespace std::chrono;
    net::steady_timer phase(io);
    double cpu_start = 0;
    clock_type::time_point opened{};
    double measured_seconds = 0, cpu_used = 0;
    phase.expires_after(duration_cast<clock_type::duration>(duration<double>(o.warmup)));
    phase.async_wait([&](error_code) {
        m.open = true;
        opened = clock_type::now();
        if (o.server_pid)
            cpu_start = cpu_seconds(o.server_pid);
        phase.expires_after(duration_cast<clock_type::duration>(duration<double>(o.duration)));
        phase.async_wait([&](error_code) {
            m.open = false;
            measured_seconds = duration<double>(clock_type::now() - opened).count();
            if (o.server_pid)
                cpu_used = cpu_seconds(o.server_pid) - cpu_start;
            io.stop();
        });
    });
    io.run();

    // Each tick from the first bot that received it to the last.
    std::vector<double> spread_us;
    for (auto const& [tick, seen] : m.tick_seen)
        spread_us.push_back(duration<double, std::micro>(seen.second - seen.first).count());
    std::printf("%u bots, %u ticks/s, %.1f s: %llu snapshots, jitter p50 %.0f us, p99 %.0f us, "
                "max %.0f us; spread p50 %.0f us, p99 %.0f us; %llu ticks skipped, %llu errors\n",
                o.bots, o.tick_hz, measured_seconds, static_cast<unsigned long long>(m.snapshots),
                percentile(m.jitter_us, 0.5), percentile(m.jitter_us, 0.99),
                percentile(m.jitter_us, 1.0), percentile(spread_us, 0.5), percentile(spread_us, 0.99),
                static_cast<unsigned long long>(m.skipped), static_cast<unsigned long long>(m.errors));
    std::printf("RESULT bots=%u tick_hz=%u snapshots=%llu jitter_p50_us=%.0f jitter_p99_us=%.0f "
                "jitter_max_us=%.0f spread_p50_us=%.0f spread_p99_us=%.0f skipped=%llu "
                "server_cpu_pct=%.1f errors=%llu\n",
                o.bots, o.tick_hz, static_cast<unsigned long long>(m.snapshots),
                percentile(m.jitter_us, 0.5), percentile(m.jitter_us, 0.99),
                percentile(m.jitter_us, 1.0), percentile(spread_us, 0.5), percentile(spread_us, 0.99),
                static_cast<unsigned long long>(m.skipped),
                measured_seconds > 0 ? 100.0 * cpu_used / measured_seconds : 0.0,
                static_cast<unsigned long long>(m.errors));
    return m.errors == 0 && m.snapshots > 0 ? 0 : 1;
}
