// SPDX-License-Identifier: BSL-1.0
// mallard_wsload: the load generator of the benchmarks in bench/.
//
// Plain Boost.Asio on one thread with raw TCP sockets: the HTTP upgrade is
// written by hand, and every data frame is built and masked once, before the
// run, so the generator spends its time in the sockets, not in framing. It
// talks to 127.0.0.1 only.
//
// Modes (--mode):
//   echo       each of --connections keeps --in-flight messages outstanding
//              on an echo path and times every round trip
//   broadcast  every connection is a subscriber of a path that publishes each
//              message it receives to all; connection 0 also publishes,
//              keeping --in-flight publishes not yet delivered to everyone;
//              every delivery is timed from its publish; with --port2, the
//              connections alternate between two servers that share the group
//              (mallard_bench_server --redis): connection 0, the publisher, is
//              on the first, and deliveries on the second, which travel
//              through Redis, are also timed on their own ("remote")
//   connect    --connections loops of: connect, upgrade, closing handshake
//   idle       opens --connections, waits --duration seconds, and reports the
//              server's resident memory per connection (VmRSS)
//
// With --server-pid, the server's CPU time (utime + stime of /proc/PID/stat)
// is read when the measured window starts and when it ends; --server-pid2
// adds the second server's (reported summed, and each on its own), and
// --redis-pid reads Redis's, reported apart and left out of "other processes".
//
// The last line of a run is machine-readable, for example:
//   RESULT mode=echo conns=100 size=16 in_flight=1 binary=0 msgs_per_s=...
//          p50_us=... p99_us=... p999_us=... cpu_us_per_msg=... errors=0

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;

enum class mode_type { echo, broadcast, connect, idle };

struct options {
    unsigned short port = 0;
    /// Broadcast across two servers: every second connection goes here.
    unsigned short port2 = 0;
    std::size_t connections = 100;
    std::size_t in_flight = 1;
    std::size_t size = 16;
    bool binary = false;
    double duration = 3.0;
    double warmup = 1.0;
    int server_pid = 0;
    int server_pid2 = 0;
    int redis_pid = 0;
    mode_type mode = mode_type::echo;
    std::string path;
    /// At most this many connections in their TCP or HTTP handshake at once
    /// while a run opens its connections (echo, broadcast, idle).
    std::size_t setup_concurrency = 256;
    /// How long opening all connections may take before the run goes on without the rest.
    double setup_timeout = 60.0;
    /// Source addresses 127.0.0.1 to 127.0.0.N, round robin: one address
    /// has about 28,000 ephemeral ports towards one server port, so 100,000
    /// connections need four.
    std::size_t sources = 1;
};

char const* mode_name(mode_type m)
{
    switch (m) {
    case mode_type::echo: return "echo";
    case mode_type::broadcast: return "broadcast";
    case mode_type::connect: return "connect";
    case mode_type::idle: return "idle";
    }
    return "?";
}

void usage(std::ostream& out)
{
    out << "usage: mallard_wsload --port N [--mode echo|broadcast|connect|idle] [--path /ws/echo]\n"
           "         [--connections N] [--in-flight D] [--size BYTES] [--binary]\n"
           "         [--duration S] [--warmup S] [--server-pid PID]\n"
           "         [--port2 N [--server-pid2 PID] [--redis-pid PID]]\n"
           "         [--setup-concurrency N] [--setup-timeout S] [--sources N]\n"
           "Connects to 127.0.0.1:PORT. Defaults: echo on /ws/echo (broadcast: /ws/broadcast),\n"
           "100 connections, 1 in flight, 16 bytes of text, 3 s measured after 1 s of warm-up.\n"
           "--port2 (broadcast only): half the connections go to a second server sharing the\n"
           "group, e.g. over Redis; the publisher is on the first.\n"
           "--sources N: connect from 127.0.0.1 to 127.0.0.N in turn (more than one\n"
           "address's ephemeral ports, for 100,000 connections).\n";
}

template <class Number>
bool parse_integer(std::string_view text, Number& out)
{
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && ptr == text.data() + text.size();
}

bool parse_seconds(std::string const& text, double& out)
{
    char* end = nullptr;
    out = std::strtod(text.c_str(), &end);
    return end && *end == '\0' && !text.empty() && out >= 0 && out <= 3600;
}

std::optional<options> parse_options(int argc, char** argv)
{
    options o;
    bool path_given = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view const arg = argv[i];
        if (arg == "--binary") {
            o.binary = true;
            continue;
        }
        if (arg == "--help" || arg == "-h") {
            usage(std::cout);
            std::exit(0);
        }
        if (i + 1 >= argc) {
            std::cerr << "mallard_wsload: " << arg << " needs a value (or is unknown)\n";
            return std::nullopt;
        }
        std::string const value = argv[++i];
        bool ok = true;
        if (arg == "--port")
            ok = parse_integer(value, o.port) && o.port != 0;
        else if (arg == "--port2")
            ok = parse_integer(value, o.port2) && o.port2 != 0;
        else if (arg == "--connections")
            ok = parse_integer(value, o.connections) && o.connections > 0 &&
                 o.connections <= 1'000'000;
        else if (arg == "--in-flight")
            ok = parse_integer(value, o.in_flight) && o.in_flight > 0 && o.in_flight <= 4096;
        else if (arg == "--size")
            ok = parse_integer(value, o.size) && o.size <= 64 * 1024 * 1024;
        else if (arg == "--duration")
            ok = parse_seconds(value, o.duration) && o.duration > 0;
        else if (arg == "--warmup")
            ok = parse_seconds(value, o.warmup);
        else if (arg == "--server-pid")
            ok = parse_integer(value, o.server_pid) && o.server_pid > 0;
        else if (arg == "--server-pid2")
            ok = parse_integer(value, o.server_pid2) && o.server_pid2 > 0;
        else if (arg == "--redis-pid")
            ok = parse_integer(value, o.redis_pid) && o.redis_pid > 0;
        else if (arg == "--setup-concurrency")
            ok = parse_integer(value, o.setup_concurrency) && o.setup_concurrency > 0;
        else if (arg == "--sources")
            ok = parse_integer(value, o.sources) && o.sources > 0 && o.sources <= 254;
        else if (arg == "--setup-timeout")
            ok = parse_seconds(value, o.setup_timeout) && o.setup_timeout > 0;
        else if (arg == "--path") {
            ok = !value.empty() && value[0] == '/' &&
                 value.find_first_of(" \r\n") == std::string::npos;
            o.path = value;
            path_given = true;
        } else if (arg == "--mode") {
            if (value == "echo")
                o.mode = mode_type::echo;
            else if (value == "broadcast")
                o.mode = mode_type::broadcast;
            else if (value == "connect")
                o.mode = mode_type::connect;
            else if (value == "idle")
                o.mode = mode_type::idle;
            else
                ok = false;
        } else {
            std::cerr << "mallard_wsload: unknown option " << arg << '\n';
            usage(std::cerr);
            return std::nullopt;
        }
        if (!ok) {
            std::cerr << "mallard_wsload: bad value for " << arg << ": " << value << '\n';
            return std::nullopt;
        }
    }
    if (o.port == 0) {
        std::cerr << "mallard_wsload: --port is required\n";
        usage(std::cerr);
        return std::nullopt;
    }
    if (o.port2 != 0 && o.mode != mode_type::broadcast) {
        std::cerr << "mallard_wsload: --port2 is for --mode broadcast (a publish on one "
                     "server reaching subscribers on both)\n";
        return std::nullopt;
    }
    if (o.port2 != 0 && o.connections < 2) {
        std::cerr << "mallard_wsload: --port2 needs --connections 2 or more\n";
        return std::nullopt;
    }
    if ((o.server_pid2 != 0 || o.redis_pid != 0) && o.port2 == 0) {
        std::cerr << "mallard_wsload: --server-pid2 and --redis-pid go with --port2\n";
        return std::nullopt;
    }
    if (!path_given)
        o.path = o.mode == mode_type::broadcast ? "/ws/broadcast" : "/ws/echo";
    if (o.mode == mode_type::broadcast && o.size < 8) {
        std::cerr << "mallard_wsload: broadcast needs --size 8 or more (a sequence number "
                     "travels in the payload)\n";
        return std::nullopt;
    }
    return o;
}

// --- /proc readers -----------------------------------------------------------

/// utime + stime of a process, in microseconds.
std::optional<std::uint64_t> process_cpu_us(int pid)
{
    if (pid <= 0)
        return std::nullopt;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line))
        return std::nullopt;
    auto const paren = line.rfind(')'); // the command name may hold spaces
    if (paren == std::string::npos)
        return std::nullopt;
    std::istringstream fields(line.substr(paren + 1));
    std::string field;
    std::uint64_t utime = 0, stime = 0;
    for (int index = 3; index <= 15 && (fields >> field); ++index) { // field 3 is the state
        if (index == 14 && !parse_integer(field, utime))
            return std::nullopt;
        if (index == 15 && !parse_integer(field, stime))
            return std::nullopt;
    }
    long const ticks = sysconf(_SC_CLK_TCK);
    if (ticks <= 0)
        return std::nullopt;
    return (utime + stime) * 1'000'000ull / static_cast<std::uint64_t>(ticks);
}

/// VmRSS of a process, in KiB.
std::optional<std::uint64_t> process_rss_kib(int pid)
{
    if (pid <= 0)
        return std::nullopt;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    for (int lines = 0; lines < 200 && std::getline(in, line); ++lines) {
        if (line.rfind("VmRSS:", 0) != 0)
            continue;
        std::istringstream value(line.substr(6));
        std::uint64_t kib = 0;
        if (value >> kib)
            return kib;
    }
    return std::nullopt;
}

/// CPU time used by the whole machine (every CPU, not idle), in microseconds.
std::optional<std::uint64_t> machine_busy_us()
{
    std::ifstream in("/proc/stat");
    std::string label;
    std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                  steal = 0;
    if (!(in >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) ||
        label != "cpu")
        return std::nullopt;
    long const ticks = sysconf(_SC_CLK_TCK);
    if (ticks <= 0)
        return std::nullopt;
    return (user + nice + system + irq + softirq + steal) * 1'000'000ull /
           static_cast<std::uint64_t>(ticks);
}

/// This process's own CPU time, in microseconds.
std::uint64_t self_cpu_us()
{
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto us = [](timeval const& t) {
        return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000ull +
               static_cast<std::uint64_t>(t.tv_usec);
    };
    return us(usage.ru_utime) + us(usage.ru_stime);
}

// --- framing ----------------------------------------------------------------

constexpr std::string_view handshake_key = "dGhlIHNhbXBsZSBub25jZQ==";
// base64(sha1(key + RFC 6455 GUID)) for the key above (RFC 6455 section 1.3).
constexpr std::string_view handshake_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
constexpr std::array<unsigned char, 4> mask_key{0x37, 0xfa, 0x21, 0x3d};

std::size_t frame_header_bytes(std::size_t payload)
{
    return 2 + (payload < 126 ? 0 : payload < 65536 ? 2 : 8) + 4; // with the mask key
}

/// A complete client frame (FIN set, masked with mask_key).
std::string masked_frame(unsigned opcode, std::string_view payload)
{
    std::string frame;
    frame.reserve(frame_header_bytes(payload.size()) + payload.size());
    frame.push_back(static_cast<char>(0x80 | opcode));
    auto const n = payload.size();
    if (n < 126) {
        frame.push_back(static_cast<char>(0x80 | n));
    } else if (n < 65536) {
        frame.push_back(static_cast<char>(0x80 | 126));
        frame.push_back(static_cast<char>((n >> 8) & 0xff));
        frame.push_back(static_cast<char>(n & 0xff));
    } else {
        frame.push_back(static_cast<char>(0x80 | 127));
        for (int shift = 56; shift >= 0; shift -= 8)
            frame.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xff));
    }
    for (auto b : mask_key)
        frame.push_back(static_cast<char>(b));
    for (std::size_t i = 0; i < n; ++i)
        frame.push_back(static_cast<char>(static_cast<unsigned char>(payload[i]) ^ mask_key[i % 4]));
    return frame;
}

/// The payload of every data message: printable ASCII for text (valid UTF-8),
/// a byte pattern for binary.
std::string make_payload(std::size_t size, bool binary)
{
    std::string payload(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        payload[i] = binary ? static_cast<char>((i * 31 + 7) & 0xff) : static_cast<char>('a' + i % 26);
    return payload;
}

/// Parses the server's frames incrementally from any split of the byte
/// stream; reports each complete data message (its opcode, its length and
/// its first bytes) and each close frame.
class frame_reader {
public:
    explicit frame_reader(std::size_t prefix_bytes = 0)
        : want_(std::min(prefix_bytes, prefix_.size()))
    {
    }

    void reset() { *this = frame_reader(want_); }

    /// False on a protocol error (a masked or malformed frame from the server).
    template <class OnMessage, class OnClose>
    bool feed(char const* data, std::size_t n, OnMessage&& on_message, OnClose&& on_close)
    {
        auto const* p = reinterpret_cast<unsigned char const*>(data);
        while (n != 0) {
            if (!in_payload_) {
                header_[have_++] = *p++;
                --n;
                if (have_ == 2) {
                    if (header_[1] & 0x80)
                        return false; // a server never masks (RFC 6455 section 5.1)
                    auto const len7 = header_[1] & 0x7f;
                    need_ = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
                }
                if (have_ < 2 || have_ < need_)
                    continue;
                std::uint64_t length = header_[1] & 0x7f;
                if (need_ == 4) {
                    length = (std::uint64_t{header_[2]} << 8) | header_[3];
                } else if (need_ == 10) {
                    length = 0;
                    for (std::size_t i = 2; i < 10; ++i)
                        length = (length << 8) | header_[i];
                }
                if (header_[0] & 0x70)
                    return false; // no extension was negotiated
                fin_ = (header_[0] & 0x80) != 0;
                op_ = header_[0] & 0x0f;
                have_ = 0;
                need_ = 2;
                control_ = op_ >= 8;
                if (control_) {
                    if (!fin_ || length > 125)
                        return false;
                } else if (op_ == 0) {
                    if (!in_message_)
                        return false;
                } else {
                    if (in_message_ || (op_ != 1 && op_ != 2))
                        return false;
                    in_message_ = true;
                    message_op_ = op_;
                    message_length_ = 0;
                    prefix_have_ = 0;
                }
                remaining_ = length;
                in_payload_ = true;
            } else {
                auto const take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n));
                if (!control_) {
                    if (prefix_have_ < want_) {
                        auto const copy = std::min(take, want_ - prefix_have_);
                        std::memcpy(prefix_.data() + prefix_have_, p, copy);
                        prefix_have_ += copy;
                    }
                    message_length_ += take;
                }
                p += take;
                n -= take;
                remaining_ -= take;
            }
            if (in_payload_ && remaining_ == 0) {
                in_payload_ = false;
                if (control_) {
                    if (op_ == 8)
                        on_close();
                    // pings and pongs: neither server under test sends them
                } else if (fin_) {
                    in_message_ = false;
                    on_message(message_op_, message_length_,
                               std::string_view(prefix_.data(), prefix_have_));
                }
            }
        }
        return true;
    }

private:
    std::array<unsigned char, 14> header_{};
    std::size_t have_ = 0;
    std::size_t need_ = 2;
    bool in_payload_ = false;
    bool fin_ = false;
    bool control_ = false;
    unsigned op_ = 0;
    std::uint64_t remaining_ = 0;
    bool in_message_ = false;
    unsigned message_op_ = 0;
    std::uint64_t message_length_ = 0;
    std::array<char, 16> prefix_{};
    std::size_t prefix_have_ = 0;
    std::size_t want_ = 0;
};

// --- statistics --------------------------------------------------------------

/// Latencies in nanoseconds (saturated at ~4.3 s), bounded in count.
class latency_log {
public:
    explicit latency_log(std::size_t reserve) { samples_.reserve(reserve); }

    void add(clock_type::duration d)
    {
        if (samples_.size() >= max_samples)
            return;
        auto const ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
        samples_.push_back(static_cast<std::uint32_t>(std::clamp<long long>(ns, 0, UINT32_MAX)));
    }

    /// Percentiles in microseconds; -1 without samples.
    std::array<double, 3> percentiles_us()
    {
        if (samples_.empty())
            return {-1, -1, -1};
        std::sort(samples_.begin(), samples_.end());
        auto at = [&](double q) {
            auto index = static_cast<std::size_t>(q * static_cast<double>(samples_.size()));
            return samples_[std::min(index, samples_.size() - 1)] / 1000.0;
        };
        return {at(0.50), at(0.99), at(0.999)};
    }

    std::size_t size() const { return samples_.size(); }

private:
    static constexpr std::size_t max_samples = 50'000'000;
    std::vector<std::uint32_t> samples_;
};

// --- the load --------------------------------------------------------------------

struct connection {
    connection(net::io_context& ioc, std::size_t position, std::size_t server_index,
               std::size_t read_bytes, std::size_t prefix_bytes, std::size_t ring_size)
        : socket(ioc)
        , index(position)
        , server(server_index)
        , read_buffer(read_bytes)
        , reader(prefix_bytes)
        , sent_at(ring_size)
    {
    }

    tcp::socket socket;
    std::size_t index;
    /// 0: the server of --port (the publisher's); 1: the one of --port2.
    std::size_t server;
    /// Bumped for every new TCP connection on this slot, so that handlers of
    /// an earlier one (connect mode) recognise themselves as stale.
    std::uint64_t generation = 0;
    std::vector<char> read_buffer;
    std::string handshake;
    frame_reader reader;
    time_point started{};

    bool upgraded = false;
    bool writing = false;
    bool want_close = false;
    bool close_sent = false;
    bool close_received = false;
    bool done = true; // no socket yet

    /// Frames queued but not written yet (echo, and the broadcast publisher).
    std::size_t pending = 0;
    /// Echo: send times of the messages in flight, oldest first.
    std::vector<time_point> sent_at;
    std::size_t ring_head = 0;
    std::size_t ring_count = 0;
    /// Broadcast: the sequence number expected next.
    std::uint64_t next_sequence = 0;
    std::vector<net::const_buffer> gather;
    /// Connect mode: the pause before trying again after a failure.
    std::unique_ptr<net::steady_timer> retry;
};

class load {
public:
    explicit load(options o)
        : opt_(std::move(o))
        , servers_(opt_.port2 != 0 ? 2 : 1)
        , phase_timer_(ioc_)
        , deadline_timer_(ioc_)
        , latencies_(1'000'000)
        , local_latencies_(servers_ > 1 ? 1'000'000 : 0)
        , remote_latencies_(servers_ > 1 ? 1'000'000 : 0)
    {
        for (std::size_t i = 0; i < servers_; ++i) {
            auto const port = i == 0 ? opt_.port : opt_.port2;
            endpoints_[i] = tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), port);
            upgrade_requests_[i] = "GET " + opt_.path + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                                   std::to_string(port) +
                                   "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: " +
                                   std::string(handshake_key) +
                                   "\r\nSec-WebSocket-Version: 13\r\n\r\n";
        }
        // Close 1000, no reason.
        close_frame_ = masked_frame(0x8, std::string_view("\x03\xe8", 2));
        auto const opcode = opt_.binary ? 0x2u : 0x1u;
        payload_header_ = frame_header_bytes(opt_.size);
        data_frame_ = masked_frame(opcode, make_payload(opt_.size, opt_.binary));
        if (opt_.mode == mode_type::echo) {
            batch_.reserve(data_frame_.size() * opt_.in_flight);
            for (std::size_t i = 0; i < opt_.in_flight; ++i)
                batch_ += data_frame_;
        }
        if (opt_.mode == mode_type::broadcast) {
            sequence_digits_ = std::min<std::size_t>(opt_.size, 16);
            slots_ = 2 * opt_.in_flight;
            publish_frames_.assign(slots_, data_frame_);
            published_at_.resize(slots_);
            delivered_.assign(slots_, 0);
        }

        std::size_t read_bytes = 4096;
        if (opt_.mode == mode_type::echo || opt_.mode == mode_type::broadcast)
            read_bytes = std::clamp<std::size_t>(opt_.size * opt_.in_flight + 256, 16 * 1024,
                                                 256 * 1024);
        else if (opt_.mode == mode_type::idle)
            read_bytes = 512;
        std::size_t const prefix = opt_.mode == mode_type::broadcast ? sequence_digits_ : 0;
        std::size_t const ring = opt_.mode == mode_type::echo ? opt_.in_flight : 0;
        conns_.reserve(opt_.connections);
        // Alternating, so that both servers fill up together while the
        // connections open, and connection 0 (the publisher) is on the first.
        for (std::size_t i = 0; i < opt_.connections; ++i)
            conns_.push_back(
                std::make_unique<connection>(ioc_, i, i % servers_, read_bytes, prefix, ring));
    }

    int run()
    {
        rss_before_ = process_rss_kib(opt_.server_pid);
        if (opt_.mode == mode_type::connect) {
            for (auto& c : conns_)
                start_connection(*c);
            start_timeline();
        } else {
            deadline_timer_.expires_after(seconds(opt_.setup_timeout));
            deadline_timer_.async_wait([this](error_code ec) {
                if (!ec && !setup_done_)
                    abandon_setup();
            });
            open_more();
        }
        // A bound on the whole run, whatever happens.
        auto const limit = seconds(opt_.setup_timeout + opt_.warmup + opt_.duration + 30.0);
        ioc_.run_for(std::chrono::duration_cast<std::chrono::milliseconds>(limit));
        if (!finished_) {
            std::cerr << "mallard_wsload: the run did not finish in time\n";
            ++errors_;
        }
        return report();
    }

private:
    static clock_type::duration seconds(double s)
    {
        return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
    }

    void error(std::string_view what)
    {
        ++errors_;
        if (errors_ <= 10)
            std::cerr << "mallard_wsload: " << what << '\n';
        else if (errors_ == 11)
            std::cerr << "mallard_wsload: more errors follow; only counted\n";
    }

    // --- opening ---------------------------------------------------------

    void open_more()
    {
        while (in_setup_ < opt_.setup_concurrency && next_to_open_ < conns_.size() && !setup_done_) {
            ++in_setup_;
            start_connection(*conns_[next_to_open_++]);
        }
    }

    // Binds c's socket to its source address, 127.0.0.(1 + index % sources).
    // IP_BIND_ADDRESS_NO_PORT leaves the port to connect(), which then needs
    // it unique only per destination, not per source address.
    bool bind_source(connection& c)
    {
        error_code ec;
        c.socket.open(tcp::v4(), ec);
        if (!ec) {
            int const one = 1;
            ::setsockopt(c.socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                         sizeof one);
            auto const host = static_cast<net::ip::address_v4::uint_type>(
                0x7f000001u + c.index % opt_.sources);
            c.socket.bind(tcp::endpoint(net::ip::address_v4(host), 0), ec);
        }
        if (ec) {
            finish(c, ec, "bind a source address");
            return false;
        }
        return true;
    }

    void start_connection(connection& c)
    {
        ++c.generation;
        error_code ignored;
        c.socket.close(ignored);
        c.socket = tcp::socket(ioc_);
        c.handshake.clear();
        c.reader.reset();
        c.upgraded = c.writing = c.want_close = c.close_sent = c.close_received = false;
        c.done = false;
        c.pending = 0;
        ++open_;
        c.started = clock_type::now();
        if (opt_.sources > 1 && !bind_source(c))
            return;
        c.socket.async_connect(endpoints_[c.server], [this, &c, g = c.generation](error_code ec) {
            if (g != c.generation || c.done)
                return;
            if (ec)
                return finish(c, ec, "connect");
            error_code ignored2;
            c.socket.set_option(tcp::no_delay(true), ignored2);
            net::async_write(c.socket, net::buffer(upgrade_requests_[c.server]),
                             [this, &c, g](error_code ec2, std::size_t) {
                                 if (g != c.generation || c.done)
                                     return;
                                 if (ec2)
                                     return finish(c, ec2, "write the upgrade request");
                             });
            read_some(c);
        });
    }

    void read_some(connection& c)
    {
        c.socket.async_read_some(
            net::buffer(c.read_buffer), [this, &c, g = c.generation](error_code ec, std::size_t n) {
                if (g != c.generation || c.done)
                    return;
                if (ec)
                    return finish(c, ec, "read");
                if (!received(c, c.read_buffer.data(), n))
                    return;
                if (!c.done)
                    read_some(c);
            });
    }

    /// False when the connection has been finished.
    bool received(connection& c, char const* data, std::size_t n)
    {
        if (!c.upgraded) {
            c.handshake.append(data, n);
            auto const end = c.handshake.find("\r\n\r\n");
            if (end == std::string::npos) {
                if (c.handshake.size() > 16 * 1024) {
                    finish(c, {}, "the upgrade response is too long");
                    return false;
                }
                return true;
            }
            if (c.handshake.rfind("HTTP/1.1 101", 0) != 0 ||
                c.handshake.find(handshake_accept) == std::string::npos) {
                auto const status_line = c.handshake.substr(0, c.handshake.find("\r\n"));
                finish(c, {}, "upgrade refused: " + status_line);
                return false;
            }
            c.upgraded = true;
            std::string const rest = c.handshake.substr(end + 4);
            c.handshake.clear();
            upgraded(c);
            if (c.done)
                return false;
            if (rest.empty())
                return true;
            return received(c, rest.data(), rest.size());
        }
        time_point const now = clock_type::now();
        bool const ok = c.reader.feed(
            data, n,
            [&](unsigned op, std::uint64_t length, std::string_view prefix) {
                if (!c.done)
                    message(c, op, length, prefix, now);
            },
            [&] {
                c.close_received = true;
                if (!c.want_close) {
                    if (!stopping_)
                        error("the server closed a connection");
                    c.want_close = true;
                }
                write_more(c); // our closing frame, unless sent already
            });
        if (!ok) {
            finish(c, {}, "protocol error in the server's frames");
            return false;
        }
        return !c.done;
    }

    void upgraded(connection& c)
    {
        auto const now = clock_type::now();
        switch (opt_.mode) {
        case mode_type::connect:
            ++total_;
            if (measuring_) {
                ++measured_;
                latencies_.add(now - c.started);
            }
            c.want_close = true; // open, upgrade, close, repeat
            write_more(c);
            return;
        case mode_type::echo:
        case mode_type::broadcast:
        case mode_type::idle:
            ++upgraded_count_;
            setup_step();
            return;
        }
    }

    /// One connection of the setup phase has been opened or has failed.
    void setup_step()
    {
        --in_setup_;
        ++setup_resolved_;
        if (setup_resolved_ == conns_.size())
            setup_finished();
        else
            open_more();
    }

    void abandon_setup()
    {
        error("opening the connections took longer than --setup-timeout");
        setup_done_ = true; // open_more stops here
        for (auto& c : conns_)
            if (!c->done && !c->upgraded)
                finish(*c, {}, nullptr);
        setup_finished();
    }

    void setup_finished()
    {
        if (setup_started_)
            return;
        setup_started_ = true;
        setup_done_ = true;
        deadline_timer_.cancel();
        if (upgraded_count_ == 0) {
            error("no connection could be opened");
            return stop_all();
        }
        live_ = upgraded_count_;
        switch (opt_.mode) {
        case mode_type::echo:
            for (auto& c : conns_)
                if (!c->done)
                    echo_send(*c, opt_.in_flight, clock_type::now());
            start_timeline();
            return;
        case mode_type::broadcast:
            // Every subscriber has joined once its upgrade is answered, but
            // give the server a moment anyway before the first publish.
            phase_timer_.expires_after(std::chrono::milliseconds(200));
            phase_timer_.async_wait([this](error_code ec) {
                if (ec)
                    return;
                publish_more();
                start_timeline();
            });
            return;
        case mode_type::idle:
            rss_connected_ = process_rss_kib(opt_.server_pid);
            begin_window();
            phase_timer_.expires_after(seconds(opt_.duration));
            phase_timer_.async_wait([this](error_code ec) {
                if (ec)
                    return;
                rss_after_ = process_rss_kib(opt_.server_pid);
                end_window();
                stop_all();
            });
            return;
        case mode_type::connect:
            return;
        }
    }

    // --- the measured window -------------------------------------------------

    void start_timeline()
    {
        phase_timer_.expires_after(seconds(opt_.warmup));
        phase_timer_.async_wait([this](error_code ec) {
            if (ec)
                return;
            begin_window();
            phase_timer_.expires_after(seconds(opt_.duration));
            phase_timer_.async_wait([this](error_code ec2) {
                if (ec2)
                    return;
                end_window();
                stop_all();
            });
        });
    }

    void begin_window()
    {
        cpu_start_ = process_cpu_us(opt_.server_pid);
        cpu2_start_ = process_cpu_us(opt_.server_pid2);
        redis_cpu_start_ = process_cpu_us(opt_.redis_pid);
        self_cpu_start_ = self_cpu_us();
        machine_start_ = machine_busy_us();
        window_start_ = clock_type::now();
        measuring_ = true;
    }

    void end_window()
    {
        measuring_ = false;
        window_end_ = clock_type::now();
        cpu_end_ = process_cpu_us(opt_.server_pid);
        cpu2_end_ = process_cpu_us(opt_.server_pid2);
        redis_cpu_end_ = process_cpu_us(opt_.redis_pid);
        self_cpu_end_ = self_cpu_us();
        machine_end_ = machine_busy_us();
    }

    void stop_all()
    {
        stopping_ = true;
        phase_timer_.cancel();
        for (auto& c : conns_) {
            if (c->done)
                continue;
            if (!c->upgraded) {
                finish(*c, {}, nullptr);
                continue;
            }
            c->want_close = true;
            write_more(*c);
        }
        if (open_ == 0)
            return all_closed();
        // Bounded: connections whose server has not closed by then are cut.
        deadline_timer_.expires_after(std::chrono::seconds(5));
        deadline_timer_.async_wait([this](error_code ec) {
            if (ec)
                return;
            for (auto& c : conns_)
                if (!c->done) {
                    ++close_timeouts_;
                    finish(*c, {}, nullptr);
                }
        });
    }

    void all_closed()
    {
        finished_ = true;
        deadline_timer_.cancel();
        phase_timer_.cancel();
    }

    // --- writing -----------------------------------------------------------------

    void echo_send(connection& c, std::size_t count, time_point now)
    {
        for (std::size_t i = 0; i < count; ++i)
            c.sent_at[(c.ring_head + c.ring_count++) % c.sent_at.size()] = now;
        c.pending += count;
        write_more(c);
    }

    void write_more(connection& c)
    {
        if (c.writing || c.done)
            return;
        auto on_written = [this, &c, g = c.generation](error_code ec, std::size_t) {
            if (g != c.generation || c.done)
                return;
            c.writing = false;
            if (ec)
                return finish(c, ec, "write");
            write_more(c);
        };
        if (c.want_close) {
            if (c.close_sent)
                return;
            c.close_sent = true;
            c.writing = true;
            net::async_write(c.socket, net::buffer(close_frame_), std::move(on_written));
            return;
        }
        if (c.pending == 0)
            return;
        if (opt_.mode == mode_type::echo) {
            auto const n = std::min(c.pending, opt_.in_flight);
            c.pending -= n;
            c.writing = true;
            net::async_write(c.socket, net::buffer(batch_.data(), n * data_frame_.size()),
                             std::move(on_written));
        } else if (opt_.mode == mode_type::broadcast) {
            c.gather.clear();
            for (auto s = published_ - c.pending; s < published_; ++s)
                c.gather.push_back(net::buffer(publish_frames_[s % slots_]));
            c.pending = 0;
            c.writing = true;
            net::async_write(c.socket, c.gather, std::move(on_written));
        }
    }

    /// Broadcast: connection 0 publishes while fewer than --in-flight
    /// publishes are still on their way to some subscriber.
    void publish_more()
    {
        auto& publisher = *conns_.front();
        if (stopping_ || publisher.done || publisher.want_close)
            return;
        auto const now = clock_type::now();
        while (published_ - completed_ < opt_.in_flight) {
            auto const s = published_++;
            auto& frame = publish_frames_[s % slots_];
            static constexpr char hex[] = "0123456789abcdef";
            for (std::size_t i = 0; i < sequence_digits_; ++i) {
                auto const digit = (s >> (4 * (sequence_digits_ - 1 - i))) & 0xf;
                frame[payload_header_ + i] =
                    static_cast<char>(static_cast<unsigned char>(hex[digit]) ^ mask_key[i % 4]);
            }
            published_at_[s % slots_] = now;
            delivered_[s % slots_] = 0;
            if (measuring_)
                ++publishes_measured_;
            ++publisher.pending;
        }
        write_more(publisher);
    }

    /// Broadcast: retires the publishes every live subscriber has received.
    void advance_completed()
    {
        while (completed_ < published_ && delivered_[completed_ % slots_] >= live_)
            ++completed_;
        publish_more();
    }

    // --- reading -----------------------------------------------------------------

    void message(connection& c, unsigned op, std::uint64_t length, std::string_view prefix,
                 time_point now)
    {
        unsigned const expected_op = opt_.binary ? 2u : 1u;
        switch (opt_.mode) {
        case mode_type::echo: {
            if (c.ring_count == 0)
                return finish(c, {}, "a message nobody asked for");
            auto const sent = c.sent_at[c.ring_head];
            c.ring_head = (c.ring_head + 1) % c.sent_at.size();
            --c.ring_count;
            if (op != expected_op || length != opt_.size)
                return finish(c, {}, "an echo of the wrong type or size");
            ++total_;
            if (measuring_) {
                ++measured_;
                latencies_.add(now - sent);
            }
            if (!stopping_ && !c.want_close)
                echo_send(c, 1, now);
            return;
        }
        case mode_type::broadcast: {
            std::uint64_t s = 0;
            if (op != expected_op || length != opt_.size || prefix.size() != sequence_digits_ ||
                std::from_chars(prefix.data(), prefix.data() + prefix.size(), s, 16).ptr !=
                    prefix.data() + prefix.size())
                return finish(c, {}, "a broadcast message of the wrong type, size or content");
            if (s >= published_ || s + slots_ < published_ || s != c.next_sequence)
                return finish(c, {}, "a broadcast message out of order or never published");
            c.next_sequence = s + 1;
            ++total_;
            if (measuring_) {
                ++measured_;
                auto const latency = now - published_at_[s % slots_];
                latencies_.add(latency);
                if (servers_ > 1) {
                    // Local: on the publisher's server; remote: through Redis.
                    (c.server == 0 ? local_latencies_ : remote_latencies_).add(latency);
                    if (c.server != 0)
                        ++measured_remote_;
                }
            }
            ++delivered_[s % slots_];
            if (s == completed_)
                advance_completed();
            return;
        }
        case mode_type::connect:
        case mode_type::idle:
            return finish(c, {}, "a message nobody asked for");
        }
    }

    // --- ending a connection --------------------------------------------------------

    /// Ends a connection. `what` names the failure, if it is one; none means
    /// a forced end (setup abandoned, shutdown deadline), counted elsewhere.
    void finish(connection& c, error_code ec, std::string const& what)
    {
        finish(c, ec, what.c_str());
    }

    void finish(connection& c, error_code ec, char const* what)
    {
        if (c.done)
            return;
        bool const clean = c.close_received && c.close_sent &&
                           (ec == net::error::eof || ec == net::error::connection_reset);
        if (!clean && what && !stopping_) {
            std::string text = what;
            if (ec)
                text += ": " + ec.message();
            error(text);
        }
        bool const was_upgraded = c.upgraded;
        c.done = true;
        ++c.generation; // every handler still pending is now stale
        error_code ignored;
        c.socket.close(ignored);
        --open_;

        switch (opt_.mode) {
        case mode_type::connect:
            if (!stopping_) {
                if (clean) {
                    start_connection(c);
                } else { // do not spin on a failing server
                    if (!c.retry)
                        c.retry = std::make_unique<net::steady_timer>(ioc_);
                    c.retry->expires_after(std::chrono::milliseconds(10));
                    c.retry->async_wait([this, &c](error_code e) {
                        if (!e && !stopping_ && c.done)
                            start_connection(c);
                    });
                }
            }
            break;
        case mode_type::echo:
        case mode_type::broadcast:
        case mode_type::idle:
            if (!was_upgraded && !setup_started_)
                setup_step();
            else if (was_upgraded && opt_.mode == mode_type::broadcast && setup_started_) {
                // One subscriber fewer to wait for; its seen publishes are
                // already counted, and the others need not wait for it.
                if (live_ > 0)
                    --live_;
                if (!stopping_)
                    advance_completed();
            }
            break;
        }
        if (stopping_ && open_ == 0)
            all_closed();
    }

    // --- the report -----------------------------------------------------------------

    int report()
    {
        auto const window_s =
            std::chrono::duration<double>(window_end_ - window_start_).count();
        bool const have_window = window_end_ > window_start_ && window_s > 0;
        auto const rate = have_window ? static_cast<double>(measured_) / window_s : 0.0;
        auto const p = latencies_.percentiles_us();
        auto used_us = [](std::optional<std::uint64_t> start, std::optional<std::uint64_t> end) {
            return start && end ? std::optional<double>(static_cast<double>(*end - *start))
                                : std::nullopt;
        };
        // The servers' CPU: both summed with --server-pid2, or none if
        // either is missing (half a figure would read as a cheap server).
        auto const cpu1_us = used_us(cpu_start_, cpu_end_);
        auto const cpu2_us = used_us(cpu2_start_, cpu2_end_);
        auto const redis_us = used_us(redis_cpu_start_, redis_cpu_end_);
        std::optional<double> cpu_us = cpu1_us;
        if (opt_.server_pid2 != 0)
            cpu_us = cpu1_us && cpu2_us ? std::optional<double>(*cpu1_us + *cpu2_us)
                                        : std::nullopt;
        double const self_us = static_cast<double>(self_cpu_end_ - self_cpu_start_);
        auto pct = [&](std::optional<double> us) {
            return us && have_window ? std::optional<double>(*us / (window_s * 1e6) * 100.0)
                                     : std::nullopt;
        };
        // What the rest of the machine used meanwhile, in % of one CPU: the
        // benchmark's noise. Tick-based, so a few % either way.
        std::optional<double> other_pct;
        if (machine_start_ && machine_end_ && cpu_us && have_window &&
            (opt_.redis_pid == 0 || redis_us))
            other_pct = std::max(0.0, (static_cast<double>(*machine_end_ - *machine_start_) -
                                       *cpu_us - redis_us.value_or(0.0) - self_us) /
                                          (window_s * 1e6) * 100.0);

        char const* unit = opt_.mode == mode_type::connect     ? "upgrades"
                           : opt_.mode == mode_type::broadcast ? "deliveries"
                                                               : "messages";
        std::cout << "mallard_wsload: " << mode_name(opt_.mode) << " on 127.0.0.1:" << opt_.port;
        if (servers_ > 1)
            std::cout << " and 127.0.0.1:" << opt_.port2;
        std::cout << opt_.path << ", " << opt_.connections << " connections";
        if (opt_.mode == mode_type::echo || opt_.mode == mode_type::broadcast)
            std::cout << ", " << opt_.size << " B " << (opt_.binary ? "binary" : "text") << ", "
                      << opt_.in_flight << " in flight";
        std::cout << '\n';
        std::ostringstream result;
        result.setf(std::ios::fixed);
        result.precision(1);
        result << "RESULT mode=" << mode_name(opt_.mode) << " conns=" << opt_.connections;
        if (servers_ > 1)
            result << " servers=" << servers_;
        auto field = [&](char const* name, std::optional<double> value, int precision = 1) {
            result << ' ' << name << '=';
            if (!value) {
                result << "na";
                return;
            }
            result.precision(precision);
            result << *value;
            result.precision(1);
        };
        if (opt_.mode == mode_type::idle) {
            std::optional<double> per_conn;
            std::optional<double> before, after;
            if (rss_before_ && rss_after_ && upgraded_count_ > 0) {
                before = static_cast<double>(*rss_before_);
                after = static_cast<double>(*rss_after_);
                per_conn = (*after - *before) / static_cast<double>(upgraded_count_);
            }
            std::cout << "  opened " << upgraded_count_ << " of " << opt_.connections
                      << " connections; server RSS " << (before ? *before : -1) << " KiB before, "
                      << (after ? *after : -1) << " KiB after " << opt_.duration
                      << " s idle: " << (per_conn ? *per_conn : -1) << " KiB per connection\n";
            result << " opened=" << upgraded_count_;
            field("rss_before_kib", before, 0);
            field("rss_connected_kib",
                  rss_connected_ ? std::optional<double>(static_cast<double>(*rss_connected_))
                                 : std::nullopt,
                  0);
            field("rss_after_kib", after, 0);
            field("kib_per_conn", per_conn, 2);
            field("idle_cpu_us", cpu_us, 0);
        } else {
            if (opt_.mode != mode_type::connect)
                result << " size=" << opt_.size << " in_flight=" << opt_.in_flight
                       << " binary=" << (opt_.binary ? 1 : 0);
            std::optional<double> per_msg;
            std::optional<double> const server_pct = pct(cpu_us);
            if (cpu_us && measured_ > 0)
                per_msg = *cpu_us / static_cast<double>(measured_);
            auto opt = [](double v) { return v < 0 ? std::nullopt : std::optional<double>(v); };
            std::cout.setf(std::ios::fixed);
            std::cout.precision(1);
            std::cout << "  " << measured_ << ' ' << unit << " in " << window_s << " s: " << rate
                      << " " << unit << "/s; latency p50 " << p[0] << " us, p99 " << p[1]
                      << " us, p99.9 " << p[2] << " us\n";
            std::array<double, 3> local_p{-1, -1, -1}, remote_p{-1, -1, -1};
            if (servers_ > 1) {
                local_p = local_latencies_.percentiles_us();
                remote_p = remote_latencies_.percentiles_us();
                std::cout << "  on the publisher's server: " << measured_ - measured_remote_
                          << ", p50 " << local_p[0] << " us, p99 " << local_p[1]
                          << " us; on the other (remote) server: " << measured_remote_
                          << ", p50 " << remote_p[0] << " us, p99 " << remote_p[1] << " us\n";
            }
            std::cout << "  server CPU " << (opt_.server_pid2 != 0 ? "(both) " : "")
                      << (server_pct ? *server_pct : -1) << " %, " << (per_msg ? *per_msg : -1)
                      << " us per " << unit;
            if (opt_.redis_pid != 0)
                std::cout << "; Redis CPU " << pct(redis_us).value_or(-1) << " %";
            std::cout << "; load generator CPU "
                      << (have_window ? self_us / (window_s * 1e6) * 100.0 : -1) << " %\n";
            result << " window_s=";
            result.precision(3);
            result << (have_window ? window_s : 0.0);
            result.precision(1);
            result << " msgs=" << measured_ << " msgs_total=" << total_;
            field("msgs_per_s", have_window ? std::optional<double>(rate) : std::nullopt);
            if (opt_.mode == mode_type::broadcast)
                field("publishes_per_s",
                      have_window ? std::optional<double>(static_cast<double>(publishes_measured_) /
                                                          window_s)
                                  : std::nullopt);
            field("p50_us", opt(p[0]));
            field("p99_us", opt(p[1]));
            field("p999_us", opt(p[2]));
            if (servers_ > 1) {
                result << " remote_msgs=" << measured_remote_;
                field("local_p50_us", opt(local_p[0]));
                field("local_p99_us", opt(local_p[1]));
                field("remote_p50_us", opt(remote_p[0]));
                field("remote_p99_us", opt(remote_p[1]));
            }
            field("cpu_us_per_msg", per_msg, 3);
            field("server_cpu_pct", server_pct);
            if (opt_.server_pid2 != 0) {
                field("server1_cpu_pct", pct(cpu1_us));
                field("server2_cpu_pct", pct(cpu2_us));
            }
            if (opt_.redis_pid != 0)
                field("redis_cpu_pct", pct(redis_us));
            field("load_cpu_pct",
                  have_window ? std::optional<double>(self_us / (window_s * 1e6) * 100.0)
                              : std::nullopt);
        }
        field("other_cpu_pct", other_pct, 0);
        result << " errors=" << errors_ << " close_timeouts=" << close_timeouts_;
        std::cout << result.str() << std::endl;
        return errors_ == 0 ? 0 : 1;
    }

    options opt_;
    std::size_t servers_;
    net::io_context ioc_{1};
    std::array<tcp::endpoint, 2> endpoints_;
    net::steady_timer phase_timer_;
    net::steady_timer deadline_timer_;
    std::vector<std::unique_ptr<connection>> conns_;

    std::array<std::string, 2> upgrade_requests_;
    std::string close_frame_;
    std::string data_frame_;
    std::string batch_;
    std::size_t payload_header_ = 0;

    // setup
    std::size_t next_to_open_ = 0;
    std::size_t in_setup_ = 0;
    std::size_t setup_resolved_ = 0;
    std::size_t upgraded_count_ = 0;
    bool setup_done_ = false;
    bool setup_started_ = false;
    std::size_t open_ = 0;

    // broadcast
    std::size_t sequence_digits_ = 0;
    std::size_t slots_ = 1;
    std::vector<std::string> publish_frames_;
    std::vector<time_point> published_at_;
    std::vector<std::size_t> delivered_;
    std::uint64_t published_ = 0;
    std::uint64_t completed_ = 0;
    std::uint64_t publishes_measured_ = 0;
    std::size_t live_ = 0;

    // the window
    bool measuring_ = false;
    bool stopping_ = false;
    bool finished_ = false;
    time_point window_start_{};
    time_point window_end_{};
    std::optional<std::uint64_t> cpu_start_, cpu_end_;
    std::optional<std::uint64_t> cpu2_start_, cpu2_end_;           // --server-pid2
    std::optional<std::uint64_t> redis_cpu_start_, redis_cpu_end_; // --redis-pid
    std::uint64_t self_cpu_start_ = 0, self_cpu_end_ = 0;
    std::optional<std::uint64_t> machine_start_, machine_end_;
    std::optional<std::uint64_t> rss_before_, rss_connected_, rss_after_;
    std::uint64_t measured_ = 0;
    std::uint64_t total_ = 0; // warm-up and closing included
    std::uint64_t errors_ = 0;
    std::uint64_t close_timeouts_ = 0;
    latency_log latencies_;
    // Two servers: the deliveries on each, apart.
    latency_log local_latencies_;
    latency_log remote_latencies_;
    std::uint64_t measured_remote_ = 0;
};

/// Many connections need many descriptors: raise the soft limit to the hard one.
void raise_descriptor_limit(std::size_t wanted)
{
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    if (limit.rlim_cur >= wanted + 64 || limit.rlim_cur == limit.rlim_max)
        return;
    limit.rlim_cur = limit.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < wanted + 64)
        std::cerr << "mallard_wsload: only " << limit.rlim_cur
                  << " file descriptors allowed; raise ulimit -n\n";
}

} // namespace

int main(int argc, char** argv)
{
    auto opt = parse_options(argc, argv);
    if (!opt)
        return 2;
    raise_descriptor_limit(opt->connections);
    try {
        load run(std::move(*opt));
        return run.run();
    } catch (std::exception const& e) {
        std::cerr << "mallard_wsload: " << e.what() << '\n';
        return 1;
    }
}
