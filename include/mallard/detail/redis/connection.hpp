// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_REDIS_CONNECTION_HPP
#define MALLARD_DETAIL_REDIS_CONNECTION_HPP

// One TCP connection to Redis, on an Asio executor. hiredis does the RESP
// work (formatting commands, parsing replies); the I/O is ours, so nothing
// blocks a server thread. Every failure is a `redis_error` whose text is
// ready for the operator's log.

#include <mallard/detail/config.hpp>
#include <mallard/task.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/execution/context_as.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <hiredis/hiredis.h>

#include <array>
#include <chrono>
#include <functional>
#include <mutex>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mallard::detail {

struct redis_reply_deleter {
    void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using redis_reply = std::unique_ptr<redisReply, redis_reply_deleter>;

/// The link to Redis failed; `what()` says how, naming the server.
class redis_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Appends the RESP encoding of one command to `out`.
inline void append_redis_command(std::string& out, std::vector<std::string_view> const& args)
{
    std::vector<char const*> pointers;
    std::vector<std::size_t> lengths;
    pointers.reserve(args.size());
    lengths.reserve(args.size());
    for (auto const arg : args) {
        pointers.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    char* formatted = nullptr;
    auto const length = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()),
                                               pointers.data(), lengths.data());
    if (length < 0)
        throw std::bad_alloc();
    out.append(formatted, static_cast<std::size_t>(length));
    redisFreeCommand(formatted);
}

/// The text of a string, status or error reply; empty for other kinds.
inline std::string_view reply_text(redisReply const& reply) noexcept
{
    if (reply.type == REDIS_REPLY_STRING || reply.type == REDIS_REPLY_STATUS ||
        reply.type == REDIS_REPLY_ERROR)
        return {reply.str, reply.len};
    return {};
}

/// Runs callbacks when an event loop shuts down, before its services (and so
/// the sockets and timers made on it) are destroyed: for objects that belong
/// to the loop but are owned by something that outlives it.
class before_loop_ends : public net::execution_context::service {
public:
    using key_type = before_loop_ends;
    static inline net::execution_context::id id;

    explicit before_loop_ends(net::execution_context& loop) : service(loop) {}

    void add(std::function<void()> callback)
    {
        std::lock_guard lock(mutex_);
        callbacks_.push_back(std::move(callback));
    }

private:
    void shutdown() override
    {
        std::vector<std::function<void()>> callbacks;
        {
            std::lock_guard lock(mutex_);
            callbacks.swap(callbacks_);
        }
        for (auto& callback : callbacks)
            callback();
    }

    std::mutex mutex_;
    std::vector<std::function<void()>> callbacks_;
};

class redis_connection {
public:
    redis_connection(net::any_io_executor executor, std::string host, std::uint16_t port)
        : socket_(executor)
        , watchdog_(executor)
        , host_(std::move(host))
        , port_(port)
        , reader_(redisReaderCreate())
    {
        if (!reader_)
            throw std::bad_alloc();
    }

    /// "host:port", for log lines.
    std::string where() const { return host_ + ":" + std::to_string(port_); }

    /// Resolves and connects within `timeout`.
    task<void> connect(std::chrono::milliseconds timeout)
    {
        arm(timeout);
        net::ip::tcp::resolver resolver(socket_.get_executor());
        auto [resolve_error, endpoints] = co_await resolver.async_resolve(
            host_, std::to_string(port_), use_tuple);
        if (resolve_error)
            throw redis_error("cannot resolve " + where() + ": " + describe(resolve_error));
        auto [connect_error, endpoint] = co_await net::async_connect(socket_, endpoints, use_tuple);
        if (connect_error)
            throw redis_error("cannot connect to " + where() + ": " + describe(connect_error));
        disarm();
        error_code ignored;
        socket_.set_option(net::ip::tcp::no_delay(true), ignored);
        // A Redis host that vanishes without a FIN is noticed, eventually.
        socket_.set_option(net::socket_base::keep_alive(true), ignored);
    }

    /// Closes the socket when `timeout` passes before `disarm()`: the
    /// pending operation then fails as "did not answer".
    void arm(std::chrono::milliseconds timeout)
    {
        timed_out_ = false;
        watchdog_.expires_after(timeout);
        watchdog_.async_wait([this](error_code ec) {
            if (ec)
                return;
            timed_out_ = true;
            error_code ignored;
            socket_.close(ignored);
        });
    }

    void disarm() { watchdog_.cancel(); }

    /// Writes `bytes` (whole commands) to Redis.
    task<void> write(std::string const& bytes)
    {
        auto [ec, written] = co_await net::async_write(socket_, net::buffer(bytes), use_tuple);
        (void)written;
        if (ec)
            throw redis_error("lost the link to " + where() + ": " + describe(ec));
    }

    /// The next reply (or pushed message) from Redis.
    task<redis_reply> read()
    {
        for (;;) {
            void* parsed = nullptr;
            if (redisReaderGetReply(reader_.get(), &parsed) != REDIS_OK)
                throw redis_error(where() + " does not speak RESP (" +
                                  std::string(reader_->errstr) + ")");
            if (parsed)
                co_return redis_reply(static_cast<redisReply*>(parsed));
            auto [ec, n] = co_await socket_.async_read_some(net::buffer(buffer_), use_tuple);
            if (ec)
                throw redis_error("lost the link to " + where() + ": " + describe(ec));
            if (redisReaderFeed(reader_.get(), buffer_.data(), n) != REDIS_OK)
                throw std::bad_alloc();
        }
    }

    bool is_open() const { return socket_.is_open(); }

    void close()
    {
        error_code ignored;
        watchdog_.cancel();
        socket_.close(ignored);
    }

private:
    std::string describe(error_code ec) const
    {
        if (timed_out_)
            return "no answer within the connect timeout";
        return ec.message();
    }

    struct reader_deleter {
        void operator()(redisReader* reader) const noexcept { redisReaderFree(reader); }
    };

    net::ip::tcp::socket socket_;
    net::steady_timer watchdog_;
    std::string host_;
    std::uint16_t port_;
    std::unique_ptr<redisReader, reader_deleter> reader_;
    std::array<char, 16 * 1024> buffer_;
    bool timed_out_ = false;
};

} // namespace mallard::detail

#endif
