// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_WORKER_HPP
#define MALLARD_DETAIL_WORKER_HPP

// One server thread: its event loop and the connections pinned to it.
// Everything here but `ioc` is touched only on that thread, so the hot path
// takes no lock.

#include <mallard/detail/config.hpp>
#include <mallard/detail/stats_counters.hpp>
#include <mallard/detail/tcp_stream.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
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

class session_base;

struct worker {
    explicit worker(std::size_t position)
        : index(position)
        , loop_(std::make_unique<net::io_context>(1))
        , ioc(*loop_)
        , guard(std::in_place, ioc.get_executor())
        , shutdown_timer(std::in_place, ioc)
    {
    }

    // Coroutines still suspended when the server goes away are destroyed with
    // the loop, and their destructors deregister here: so the loop goes
    // first, while the registries still exist, and after the objects bound to it.
    ~worker()
    {
        tearing_down_ = true;
        shutdown_timer.reset();
        guard.reset();
        loop_.reset();
    }

    worker(worker const&) = delete;
    worker& operator=(worker const&) = delete;

    /// This worker's position among the server's.
    std::size_t const index;

private:
    std::unique_ptr<net::io_context> loop_;
    bool tearing_down_ = false;

public:
    /// Concurrency hint 1: exactly one thread runs this loop.
    net::io_context& ioc;
    /// Keeps `run()` going while idle; reset once the worker has drained.
    std::optional<net::executor_work_guard<executor_type>> guard;
    /// Bounds the shutdown: the grace period, then a last one for on_close.
    std::optional<net::steady_timer> shutdown_timer;
    /// Open WebSocket connections, for shutdown.
    std::unordered_set<session_base*> sessions;
    /// Connections still in the TLS or HTTP handshake or the upgrade
    /// decision (by their TCP layer), so shutdown can cut them.
    std::unordered_set<tcp_stream*> handshakes;
    /// Group name to this thread's members of it.
    std::unordered_map<std::string, std::vector<session_base*>> groups;
    /// This thread's counters.
    stats_counters stats;
    /// Connections open on this thread, readable from any thread.
    std::atomic<std::size_t> open_count{0};
    /// Set on this thread once the server is stopping.
    bool stopping = false;
    /// Called once, on this thread, when the stopping worker has no
    /// connection left.
    std::function<void()> on_drained;

    /// A connection's upgrade is done: it counts as open.
    void add(session_base* s)
    {
        sessions.insert(s);
        open_count.store(open_count.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
    }

    /// A connection has ended (before its on_close runs): no longer open.
    void ended()
    {
        open_count.store(open_count.load(std::memory_order_relaxed) - 1,
                         std::memory_order_relaxed);
    }

    /// A connection's coroutines have all finished.
    void remove(session_base* s)
    {
        sessions.erase(s);
        maybe_finish();
    }

    /// Ends the loop once the server is stopping and nothing is left on it.
    void maybe_finish()
    {
        if (tearing_down_ || !stopping || !sessions.empty() || !handshakes.empty() || !guard)
            return;
        guard.reset();
        shutdown_timer->cancel();
        if (on_drained)
            on_drained();
    }
};

/// Keeps a connection in its worker's `handshakes` until released, so that
/// shutdown can cut it. (A named type: g++ 12 cannot mangle a local class
/// inside a coroutine.)
class handshake_registration {
public:
    handshake_registration(worker& w, tcp_stream* stream) : worker_(w), stream_(stream)
    {
        worker_.handshakes.insert(stream_);
    }
    handshake_registration(handshake_registration const&) = delete;
    handshake_registration& operator=(handshake_registration const&) = delete;
    ~handshake_registration() { release(); }

    void release()
    {
        if (stream_ && worker_.handshakes.erase(std::exchange(stream_, nullptr)))
            worker_.maybe_finish();
    }

private:
    worker& worker_;
    tcp_stream* stream_;
};

} // namespace mallard::detail

#endif
