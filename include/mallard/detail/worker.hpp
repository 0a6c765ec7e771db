// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_WORKER_HPP
#define MALLARD_DETAIL_WORKER_HPP

// One server thread: its event loop, the connections pinned to it, and its
// part of the graceful shutdown. Everything here but the loop itself and the
// count of open connections is touched only on that thread, so the hot path
// takes no lock.

#include <mallard/close_reason.hpp>
#include <mallard/detail/config.hpp>
#include <mallard/detail/deadline_wheel.hpp>
#include <mallard/detail/memory_budget.hpp>
#include <mallard/detail/pooled_buffer.hpp>
#include <mallard/detail/server_phase.hpp>
#include <mallard/detail/session_base.hpp>
#include <mallard/detail/stats_counters.hpp>
#include <mallard/detail/tcp_stream.hpp>
#include <mallard/opcode.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
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
    /// A group message held for a member whose join waits for its group's
    /// history (see fanout::finish_join).
    struct held_delivery {
        std::uint64_t offset; // 0: not a history message (a presence notice)
        std::shared_ptr<std::string const> published, sent;
        opcode op;
    };

    /// One of this thread's members of a group.
    struct group_member {
        session_base* session;
        /// For a group with history: the offset up to which the member has
        /// its messages already (from its join); later deliveries of those
        /// are skipped.
        std::uint64_t delivered_through = 0;
        /// While its join waits for the history: what arrived meanwhile.
        std::unique_ptr<std::vector<held_delivery>> held{};
    };
    /// Group name to this thread's members of it.
    using group_members = std::unordered_map<std::string, std::vector<group_member>>;

    /// `tick`: the deadline wheel's (see choose_tick); `routes`: how many
    /// the server has, each counted apart.
    worker(std::size_t position, std::chrono::milliseconds tick, std::size_t routes)
        : index_(position)
        , loop_(std::make_unique<net::io_context>(1))
        , guard_(std::in_place, loop_->get_executor())
        , shutdown_timer_(std::in_place, *loop_)
        , memory_timer_(std::in_place, *loop_)
        , deadlines_(std::in_place, *loop_, tick)
        , route_stats_(std::make_unique<stats_counters[]>(routes))
        , route_count_(routes)
        , samples_(routes)
    {
    }

    // Coroutines still suspended when the server goes away are destroyed with
    // the loop, and their destructors deregister here: so the loop goes
    // first, while the registries still exist, and after the objects bound to it.
    ~worker()
    {
        tearing_down_ = true;
        shutdown_timer_.reset();
        memory_timer_.reset();
        deadlines_.reset(); // connections destroyed with the loop do not unschedule
        guard_.reset();
        loop_.reset();
    }

    worker(worker const&) = delete;
    worker& operator=(worker const&) = delete;

    /// This worker's position among the server's.
    std::size_t index() const noexcept { return index_; }

    /// The event loop; concurrency hint 1: exactly one thread runs it.
    net::io_context& loop() noexcept { return *loop_; }

    /// This thread's connection deadlines: `e` is due at `due` (see
    /// deadline_wheel.hpp); this thread.
    void schedule(deadline_wheel::entry& e, std::chrono::steady_clock::time_point due)
    {
        if (!tearing_down_)
            deadlines_->schedule(e, due);
    }
    void unschedule(deadline_wheel::entry& e) noexcept
    {
        if (!tearing_down_)
            deadlines_->cancel(e);
    }

    /// This thread's spare message buffers (see pooled_buffer.hpp).
    buffer_pool& buffers() noexcept { return buffers_; }

    /// This thread's counters of the connections of route `route` (its
    /// position in the router).
    stats_counters& stats(std::size_t route) noexcept { return route_stats_[route]; }
    stats_counters const& stats(std::size_t route) const noexcept { return route_stats_[route]; }

    /// This thread's counts that belong to no route.
    http_counters& http_stats() noexcept { return http_stats_; }
    http_counters const& http_stats() const noexcept { return http_stats_; }

    /// Connections in their TLS or HTTP handshake on this thread; any thread.
    std::size_t handshakes() const noexcept { return handshake_count_.load(std::memory_order_relaxed); }

    /// This thread's members of each group (the fanout's bookkeeping).
    group_members& groups() noexcept { return groups_; }

    /// Open WebSocket connections on this thread; any thread.
    std::size_t open_connections() const noexcept
    {
        return open_count_.load(std::memory_order_relaxed);
    }

    /// Bytes the connections held at the memory budget's last look, and how
    /// many of them it has paused; any thread.
    std::size_t memory_held() const noexcept { return memory_held_.load(std::memory_order_relaxed); }
    std::size_t connections_paused() const noexcept
    {
        return paused_count_.load(std::memory_order_relaxed);
    }

    /// Whether a memory budget is kept (`watch_memory` was called).
    bool memory_budgeted() const noexcept { return memory_share_ != 0; }

    /// This thread, before a read of `s`, which holds `held` bytes: whether
    /// it must pause instead, the thread being over its share by the count
    /// of bytes read since the last look. Pausing is recorded.
    bool pause_before_read(session_base* s, std::size_t held)
    {
        if (held_estimate_ <= memory_share_ || held < memory_pause_floor)
            return false;
        paused_.emplace(s, std::chrono::steady_clock::now());
        paused_count_.store(paused_.size(), std::memory_order_relaxed);
        return true;
    }

    /// This thread: a connection read `bytes`; counted until the next look.
    void count_read(std::size_t bytes) noexcept { held_estimate_ += bytes; }

    /// Before the loop runs: holds this thread's connections to `share`
    /// bytes (see detail/memory_budget.hpp) at every look.
    void watch_memory(std::size_t share, std::chrono::milliseconds timeout)
    {
        memory_share_ = share;
        memory_timeout_ = timeout;
    }

    /// Before the loop runs: starts the looks at the connections, every
    /// look_interval, which sample their send queues for the metrics and
    /// keep the memory budget.
    void start_looking() { schedule_look(); }

    /// Whether the server is stopping; this thread.
    bool stopping() const noexcept { return stopping_; }

    /// Whether the server has begun to drain or stop: new upgrades are
    /// refused; this thread.
    bool draining() const noexcept { return draining_ || stopping_; }

    /// The server's phase as this thread sees it.
    server_phase phase() const noexcept
    {
        return stopping_ ? server_phase::stopping
                         : draining_ ? server_phase::draining : server_phase::serving;
    }

    /// How the server stops: the close code, and when refused clients may
    /// come back.
    struct stop_terms {
        close_code code = close_code::going_away;
        std::chrono::seconds retry_after{5};
    };

    /// How the server stops, once it drains or stops; this thread.
    stop_terms const& stop_plan() const noexcept { return stop_plan_; }

    /** On this thread: closes the connections open now with `code`, spread
        evenly over `window` (the first at once), so that their clients do
        not all come back at the same moment. New upgrades are refused from
        now on. shut_down, at the window's end, closes whatever is left.
    */
    void drain(std::chrono::milliseconds window, stop_terms terms)
    {
        if (draining_ || stopping_)
            return;
        draining_ = true;
        stop_plan_ = terms;
        draining_list_.assign(sessions_.begin(), sessions_.end());
        drain_start_ = std::chrono::steady_clock::now();
        drain_window_ = window;
        drained_ = 0;
        close_due();
    }

    /// Called once, on this thread, when the stopping worker has no
    /// connection left.
    void when_drained(std::function<void()> callback) { on_drained_ = std::move(callback); }

    /// A connection is in its TLS or HTTP handshake or its upgrade decision,
    /// which shutdown cuts by closing `stream`.
    void handshake_started(tcp_stream* stream)
    {
        handshakes_.insert(stream);
        handshake_count_.store(handshakes_.size(), std::memory_order_relaxed);
    }

    /// That handshake is over, one way or the other.
    void handshake_ended(tcp_stream* stream)
    {
        if (handshakes_.erase(stream)) {
            handshake_count_.store(handshakes_.size(), std::memory_order_relaxed);
            maybe_finish();
        }
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
        paused_.erase(s);
        maybe_finish();
    }

    /** On this thread: asks every connection to close (with `terms.code`) and
        cuts every handshake; after `grace` cuts the connections still open; after one
        more `grace` for their on_close handlers, calls `hung` and stops the
        loop. The loop ends on its own as soon as nothing is left.
    */
    void shut_down(std::chrono::milliseconds grace, stop_terms terms, std::function<void()> hung)
    {
        stopping_ = true;
        stop_plan_ = terms;
        memory_timer_->cancel(); // a pending look would keep the loop running
        for (auto* session : std::vector(sessions_.begin(), sessions_.end()))
            session->close(terms.code, stop_reason(terms.code), close_cause::shutdown);
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

    /// The reason text that goes with a stop's close code.
    static char const* stop_reason(close_code code) noexcept
    {
        return code == close_code::service_restart ? "service restart" : "server shutdown";
    }

private:
    // The drain: closes the connections whose turn has come, the k-th of n
    // at window * k / n, and waits for the next one's turn.
    void close_due()
    {
        if (stopping_)
            return; // shut_down has closed them all
        auto const n = draining_list_.size();
        auto const due = [&](std::size_t k) {
            return drain_start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      drain_window_ * k / n);
        };
        auto const now = std::chrono::steady_clock::now();
        for (; drained_ < n && due(drained_) <= now; ++drained_) {
            auto* session = draining_list_[drained_];
            // One that has ended since is gone: only those still here are closed.
            if (sessions_.contains(session))
                session->close(stop_plan_.code, stop_reason(stop_plan_.code), close_cause::shutdown);
        }
        if (drained_ == n)
            return;
        shutdown_timer_->expires_at(due(drained_));
        shutdown_timer_->async_wait([this](error_code ec) {
            if (!ec)
                close_due();
        });
    }

    // Ten looks a second, each visiting every connection of the thread:
    // between two looks, connections can go over by what they read meanwhile.
    static constexpr std::chrono::milliseconds look_interval{100};

    void schedule_look()
    {
        memory_timer_->expires_after(look_interval);
        memory_timer_->async_wait([this](error_code ec) {
            if (ec || stopping_)
                return;
            look();
            schedule_look();
        });
    }

    // Allocates nothing while the thread is within its share (the vectors
    // keep their capacity): a look may come in the middle of any message.
    void look()
    {
        auto& sessions = looked_at_;
        sessions.assign(sessions_.begin(), sessions_.end());
        sample_send_queues(sessions);
        if (memory_budgeted())
            look_at_memory(sessions);
    }

    void sample_send_queues(std::vector<session_base*> const& sessions)
    {
        std::fill(samples_.begin(), samples_.end(), stats_counters::queue_sample{});
        for (auto* s : sessions)
            samples_[s->route_index()].add(s->queued_bytes());
        for (std::size_t route = 0; route < route_count_; ++route)
            route_stats_[route].sampled(samples_[route]);
    }

    void look_at_memory(std::vector<session_base*> const& sessions)
    {
        auto& holders = holders_;
        holders.clear();
        for (auto* s : sessions) {
            auto const paused = paused_.find(s);
            holders.push_back({s->held_bytes(), paused != paused_.end(), !s->is_open(),
                               paused != paused_.end() ? paused->second
                                                       : std::chrono::steady_clock::time_point{}});
        }
        auto const now = std::chrono::steady_clock::now();
        auto const actions =
            decide_memory(holders, memory_share_, memory_pause_floor, now, memory_timeout_);
        for (auto const i : actions.pause) {
            sessions[i]->pause_reading(true);
            paused_.emplace(sessions[i], now);
        }
        for (auto const i : actions.resume) {
            sessions[i]->pause_reading(false);
            paused_.erase(sessions[i]);
        }
        for (auto const i : actions.close) {
            paused_.erase(sessions[i]);
            sessions[i]->close(close_code::try_again_later, "memory budget",
                               close_cause::memory_budget); // reads again, for the close
        }
        held_estimate_ = actions.total;
        memory_held_.store(actions.total, std::memory_order_relaxed);
        paused_count_.store(paused_.size(), std::memory_order_relaxed);
    }

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
    std::optional<net::steady_timer> memory_timer_; // the next look at the connections
    std::optional<deadline_wheel> deadlines_;       // every connection's deadlines
    buffer_pool buffers_;
    std::size_t memory_share_ = 0;
    std::size_t held_estimate_ = 0; // the last look's total plus bytes read since
    std::vector<session_base*> looked_at_; // the last look's connections, and
    std::vector<memory_holder> holders_;   // what they held
    std::chrono::milliseconds memory_timeout_{0};
    std::unordered_map<session_base*, std::chrono::steady_clock::time_point> paused_; // since
    std::atomic<std::size_t> memory_held_{0};
    std::atomic<std::size_t> paused_count_{0};
    std::unordered_set<session_base*> sessions_;
    std::unordered_set<tcp_stream*> handshakes_;
    group_members groups_;
    std::unique_ptr<stats_counters[]> route_stats_; // one per route
    std::size_t route_count_;
    std::vector<stats_counters::queue_sample> samples_; // one per route, for each look
    http_counters http_stats_;
    std::atomic<std::size_t> open_count_{0};
    std::atomic<std::size_t> handshake_count_{0};
    bool stopping_ = false;
    bool draining_ = false;
    stop_terms stop_plan_;
    std::vector<session_base*> draining_list_; // the connections open when the drain began
    std::size_t drained_ = 0;                  // how many of them have been closed
    std::chrono::steady_clock::time_point drain_start_{};
    std::chrono::milliseconds drain_window_{0};
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
