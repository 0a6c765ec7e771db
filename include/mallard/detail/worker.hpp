// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_WORKER_HPP
#define MALLARD_DETAIL_WORKER_HPP

// One server thread: its event loop, the connections pinned to it, and its
// part of the graceful shutdown. Everything here but the loop itself and the
// count of open connections is touched only on that thread, so the hot path
// takes no lock.

#include <mallard/close_reason.hpp>
#include <mallard/detail/config.hpp>
#include <mallard/detail/session_base.hpp>
#include <mallard/detail/stats_counters.hpp>
#include <mallard/detail/tcp_stream.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace mallard::detail {

class worker {
public:
    /// Group name to this thread's members of it.
    using group_members = std::unordered_map<std::string, std::vector<session_base*>>;

    explicit worker(std::size_t position)
        : index_(position)
        , loop_(std::make_unique<net::io_context>(1))
        , guard_(std::in_place, loop_->get_executor())
        , shutdown_timer_(std::in_place, *loop_)
    {
    }

    // Coroutines still suspended when the server goes away are destroyed with
    // the loop, and their destructors deregister here: so the loop goes
    // first, while the registries still exist, and after the objects bound to it.
    ~worker()
    {
        tearing_down_ = true;
        shutdown_timer_.reset();
        guard_.reset();
        loop_.reset();
    }

    worker(worker const&) = delete;
    worker& operator=(worker const&) = delete;

    /// This worker's position among the server's.
    std::size_t index() const noexcept { return index_; }

    /// The event loop; concurrency hint 1: exactly one thread runs it.
    net::io_context& loop() noexcept { return *loop_; }

    /// This thread's counters.
    stats_counters& stats() noexcept { return stats_; }
    stats_counters const& stats() const noexcept { return stats_; }

    /// This thread's members of each group (the fanout's bookkeeping).
    group_members& groups() noexcept { return groups_; }

    /// Open WebSocket connections on this thread; any thread.
    std::size_t open_connections() const noexcept
    {
        return open_count_.load(std::memory_order_relaxed);
    }

    /// Whether the server is stopping; this thread.
    bool stopping() const noexcept { return stopping_; }

    /// Called once, on this thread, when the stopping worker has no
    /// connection left.
    void when_drained(std::function<void()> callback) { on_drained_ = std::move(callback); }

    /// A connection is in its TLS or HTTP handshake or its upgrade decision,
    /// which shutdown cuts by closing `stream`.
    void handshake_started(tcp_stream* stream) { handshakes_.insert(stream); }

    /// That handshake is over, one way or the other.
    void handshake_ended(tcp_stream* stream)
    {
        if (handshakes_.erase(stream))
            maybe_finish();
    }

    /// A connection's upgrade is done: it counts as open.
    void opened(session_base* s)
    {
        sessions_.insert(s);
        open_count_.store(open_count_.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
    }

    /// A connection has ended (before its on_close runs): no longer open.
    void closed()
    {
        open_count_.store(open_count_.load(std::memory_order_relaxed) - 1,
                          std::memory_order_relaxed);
    }

    /// A connection's coroutines have all finished.
    void finished(session_base* s)
    {
        sessions_.erase(s);
        maybe_finish();
    }

    /** On this thread: asks every connection to close (1001) and cuts every
        handshake; after `grace` cuts the connections still open; after one
        more `grace` for their on_close handlers, calls `hung` and stops the
        loop. The loop ends on its own as soon as nothing is left.
    */
    void shut_down(std::chrono::milliseconds grace, std::function<void()> hung)
    {
        stopping_ = true;
        for (auto* session : std::vector(sessions_.begin(), sessions_.end()))
            session->close(close_code::going_away, "server shutdown", close_cause::shutdown);
        for (auto* stream : handshakes_)
            stream->close(); // its read ends with operation_aborted; no answer is owed
        shutdown_timer_->expires_after(grace);
        shutdown_timer_->async_wait([this, grace, hung = std::move(hung)](error_code ec) {
            if (ec)
                return;
            for (auto* session : std::vector(sessions_.begin(), sessions_.end()))
                session->abort();
            shutdown_timer_->expires_after(grace);
            shutdown_timer_->async_wait([this, hung](error_code ec2) {
                if (ec2)
                    return;
                hung();
                loop_->stop();
            });
        });
        maybe_finish();
    }

private:
    // Ends the loop once the server is stopping and nothing is left on it.
    void maybe_finish()
    {
        if (tearing_down_ || !stopping_ || !sessions_.empty() || !handshakes_.empty() || !guard_)
            return;
        guard_.reset();
        shutdown_timer_->cancel();
        if (on_drained_)
            on_drained_();
    }

    std::size_t const index_;
    std::unique_ptr<net::io_context> loop_;
    bool tearing_down_ = false;
    // Keeps the loop's run() going while idle; reset once the worker has drained.
    std::optional<net::executor_work_guard<executor_type>> guard_;
    // Bounds the shutdown: the grace period, then a last one for on_close.
    std::optional<net::steady_timer> shutdown_timer_;
    std::unordered_set<session_base*> sessions_;
    std::unordered_set<tcp_stream*> handshakes_;
    group_members groups_;
    stats_counters stats_;
    std::atomic<std::size_t> open_count_{0};
    bool stopping_ = false;
    std::function<void()> on_drained_;
};

/// Keeps a connection in its worker's handshakes until released, so that
/// shutdown can cut it. (A named type: g++ 12 cannot mangle a local class
/// inside a coroutine.)
class handshake_registration {
public:
    handshake_registration(worker& w, tcp_stream* stream) : worker_(w), stream_(stream)
    {
        worker_.handshake_started(stream_);
    }
    handshake_registration(handshake_registration const&) = delete;
    handshake_registration& operator=(handshake_registration const&) = delete;
    ~handshake_registration() { release(); }

    void release()
    {
        if (stream_)
            worker_.handshake_ended(std::exchange(stream_, nullptr));
    }

private:
    worker& worker_;
    tcp_stream* stream_;
};

} // namespace mallard::detail

#endif
