// SPDX-License-Identifier: BSL-1.0
// What the integration tests share: a server on a background thread, a probe
// that views record events into and tests await, a log capture, and a raw
// TCP connection for bytes no WebSocket client would send.

#ifndef MALLARD_TESTS_INTEGRATION_SUPPORT_HPP
#define MALLARD_TESTS_INTEGRATION_SUPPORT_HPP

#include <mallard/mallard.hpp>
#include <mallard/testing/client.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <functional>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace test {

using namespace std::chrono_literals;
namespace net = boost::asio;

/// Events recorded by views on server threads, awaited by the test thread.
class probe {
public:
    void record(std::string event)
    {
        {
            std::lock_guard lock(mutex_);
            events_.push_back(std::move(event));
        }
        changed_.notify_all();
    }

    /// Waits until `event` has been recorded at least `times` times.
    bool wait_for(std::string const& event, std::size_t times = 1,
                  std::chrono::milliseconds timeout = 10s)
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return count_locked(event) >= times; });
    }

    /// Waits for the first event that starts with `prefix` and returns it.
    std::optional<std::string> wait_for_prefix(std::string const& prefix,
                                               std::chrono::milliseconds timeout = 10s)
    {
        std::unique_lock lock(mutex_);
        std::optional<std::string> found;
        changed_.wait_for(lock, timeout, [&] {
            for (auto const& e : events_)
                if (e.starts_with(prefix)) {
                    found = e;
                    return true;
                }
            return false;
        });
        return found;
    }

    /// Waits until `times` events starting with `prefix` have been recorded.
    bool wait_for_prefix_count(std::string const& prefix, std::size_t times,
                               std::chrono::milliseconds timeout = 20s)
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] {
            return static_cast<std::size_t>(std::count_if(
                       events_.begin(), events_.end(),
                       [&](auto const& e) { return e.starts_with(prefix); })) >= times;
        });
    }

    std::size_t count(std::string const& event) const
    {
        std::lock_guard lock(mutex_);
        return count_locked(event);
    }

    std::size_t count_prefix(std::string const& prefix) const
    {
        std::lock_guard lock(mutex_);
        return std::count_if(events_.begin(), events_.end(),
                             [&](auto const& e) { return e.starts_with(prefix); });
    }

    std::vector<std::string> events() const
    {
        std::lock_guard lock(mutex_);
        return events_;
    }

    /// Keeps a view's connection handle, for sends after the view is gone.
    void keep(mallard::connection c)
    {
        std::lock_guard lock(mutex_);
        kept_ = std::move(c);
    }

    mallard::connection kept() const
    {
        std::lock_guard lock(mutex_);
        return kept_;
    }

    /// Index of the first `event`, or -1.
    long index_of(std::string const& event) const
    {
        std::lock_guard lock(mutex_);
        auto it = std::find(events_.begin(), events_.end(), event);
        return it == events_.end() ? -1 : static_cast<long>(it - events_.begin());
    }

private:
    std::size_t count_locked(std::string const& event) const
    {
        return static_cast<std::size_t>(std::count(events_.begin(), events_.end(), event));
    }

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> events_;
    mallard::connection kept_;
};

/// Log records, kept for assertions.
class log_capture {
public:
    mallard::logger logger(mallard::log_level level = mallard::log_level::info)
    {
        return {level, [this](mallard::log_level, mallard::log_category, std::string_view text) {
                    {
                        std::lock_guard lock(mutex_);
                        lines_.emplace_back(text);
                    }
                    changed_.notify_all();
                }};
    }

    /// Waits until a line contains `text`; whether one did within `timeout`.
    bool wait_for(std::string const& text, std::chrono::milliseconds timeout = 10s) const
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] {
            return std::any_of(lines_.begin(), lines_.end(), [&](auto const& line) {
                return line.find(text) != std::string::npos;
            });
        });
    }

    bool contains(std::string const& text) const
    {
        std::lock_guard lock(mutex_);
        return std::any_of(lines_.begin(), lines_.end(),
                           [&](auto const& line) { return line.find(text) != std::string::npos; });
    }

private:
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<std::string> lines_;
};

/// The options tests start from: any free port, two threads, no signals.
inline mallard::server_options test_options(log_capture& log, unsigned threads = 2)
{
    return {.port = 0,
            .threads = threads,
            .log = log.logger(),
            .handshake_timeout = 2s,
            .shutdown_grace = 2s,
            .handle_signals = false};
}

/// A server running on a background thread for the length of a test.
class running_server {
public:
    running_server(mallard::server_options options, mallard::router urls)
        : server_(std::move(options), std::move(urls)), thread_([this] { server_.run(); })
    {
    }
    running_server(running_server const&) = delete;
    ~running_server() { stop(); }

    unsigned short port() const { return server_.port(); }
    mallard::server& get() { return server_; }

    /// Stops the server and waits until run() has returned.
    void stop()
    {
        server_.stop();
        if (thread_.joinable())
            thread_.join();
    }

private:
    mallard::server server_;
    std::thread thread_;
};

/// A plain TCP connection with a deadline on every read, for raw bytes.
class raw_connection {
public:
    explicit raw_connection(unsigned short port) : socket_(ioc_)
    {
        socket_.connect({net::ip::make_address("127.0.0.1"), port});
        socket_.set_option(net::ip::tcp::no_delay(true));
    }

    void write(std::string_view bytes) { net::write(socket_, net::buffer(bytes)); }

    /// Reads until the server closes the connection or `timeout` passes;
    /// returns what arrived and whether the server closed.
    std::pair<std::string, bool> read_until_closed(std::chrono::milliseconds timeout = 5s)
    {
        return read_while([](std::string const&) { return true; }, timeout);
    }

    /// Reads until `marker` has arrived, the server closes, or `timeout`
    /// passes; returns everything read.
    std::string read_until(std::string_view marker, std::chrono::milliseconds timeout = 5s)
    {
        return read_while(
                   [marker](std::string const& data) {
                       return data.find(marker) == std::string::npos;
                   },
                   timeout)
            .first;
    }

    /// Sends `request` and returns the HTTP status of the answer (0 if none).
    unsigned http_status(std::string const& request, std::chrono::milliseconds timeout = 5s)
    {
        write(request);
        auto [reply, closed] = read_until_closed(timeout);
        if (!reply.starts_with("HTTP/1.1 ") || reply.size() < 12)
            return 0;
        return static_cast<unsigned>(std::stoi(reply.substr(9, 3)));
    }

    net::ip::tcp::socket& socket() { return socket_; }

private:
    // Reads while `more(data)` holds and the connection is open, at most
    // `timeout`; returns what arrived and whether the server closed.
    std::pair<std::string, bool> read_while(std::function<bool(std::string const&)> more,
                                            std::chrono::milliseconds timeout)
    {
        std::string data;
        bool closed = false;
        std::array<char, 4096> chunk;
        std::function<void()> read_more = [&] {
            socket_.async_read_some(net::buffer(chunk), [&](boost::system::error_code ec,
                                                            std::size_t n) {
                data.append(chunk.data(), n);
                if (ec) {
                    closed = ec != net::error::operation_aborted;
                    return;
                }
                if (more(data))
                    read_more();
            });
        };
        read_more();
        ioc_.restart();
        ioc_.run_for(timeout);
        if (!ioc_.stopped()) {
            boost::system::error_code ignored;
            socket_.cancel(ignored);
            ioc_.restart();
            ioc_.run();
        }
        return {data, closed};
    }

    net::io_context ioc_;
    net::ip::tcp::socket socket_;
};

/// A client frame header (masked, key 0 so the payload goes as is) that
/// declares `length` bytes, for frames whose payload is never sent.
inline std::string frame_header(std::uint8_t opcode, std::uint64_t length, bool fin = true)
{
    std::string h;
    h += static_cast<char>((fin ? 0x80 : 0x00) | opcode);
    if (length < 126) {
        h += static_cast<char>(0x80 | length);
    } else if (length <= 0xFFFF) {
        h += static_cast<char>(0x80 | 126);
        h += static_cast<char>(length >> 8);
        h += static_cast<char>(length & 0xFF);
    } else {
        h += static_cast<char>(0x80 | 127);
        for (int shift = 56; shift >= 0; shift -= 8)
            h += static_cast<char>((length >> shift) & 0xFF);
    }
    h.append(4, '\0'); // masking key 0: XOR leaves the payload unchanged
    return h;
}

/// Writes raw bytes on a connected testing client's socket.
inline void write_raw(mallard::testing::client& c, std::string_view bytes)
{
    c.send_raw(bytes);
}

/// An upgrade request for `target`; `extra_headers` are whole lines ending in CRLF.
inline std::string upgrade_request(std::string const& target, std::string const& extra_headers = {})
{
    return "GET " + target +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
           extra_headers + "\r\n";
}

} // namespace test

#endif
