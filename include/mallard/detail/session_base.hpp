// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_SESSION_BASE_HPP
#define MALLARD_DETAIL_SESSION_BASE_HPP

// The part of a connection that views and connection handles talk to: the
// outbound queue, the close request, spawned tasks. It knows nothing of the
// stream type; detail::session<Stream> adds the reader and the writer.
//
// Threading: a session lives on one single-threaded io_context. Every member
// is touched only on that thread, except `closing_` (an atomic read by any
// thread) and the functions marked "any thread", which post to it.

#include <mallard/close_reason.hpp>
#include <mallard/detail/admission.hpp>
#include <mallard/detail/config.hpp>
#include <mallard/detail/group_hub.hpp>
#include <mallard/detail/stats_counters.hpp>
#include <mallard/detail/send_queue.hpp>
#include <mallard/logger.hpp>
#include <mallard/options.hpp>
#include <mallard/request.hpp>
#include <mallard/send_status.hpp>
#include <mallard/task.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mallard::detail {

/// The message of a caught exception, for logs.
inline std::string describe(std::exception_ptr e)
{
    try {
        std::rethrow_exception(e);
    } catch (std::exception const& ex) {
        return ex.what();
    } catch (...) {
        return "an exception not derived from std::exception";
    }
}

/// A close that has been asked for but not yet sent.
struct close_request {
    close_code code;
    std::string reason;
    close_cause cause;
};

/// A timer that never expires by itself: `notify()` wakes every coroutine
/// waiting on it. Its expiry is set once, so waiters never cancel each other.
/// A connection has one, for every condition its coroutines wait for (the
/// queue drained, the spawned tasks done, the writer finished or having
/// taken a message): each waits in a loop on its own condition, so a wake-up
/// meant for another only costs a look, and a connection carries one timer
/// instead of one per condition.
class event {
public:
    explicit event(executor_type const& ex) : timer_(ex, net::steady_timer::time_point::max()) {}
    task<void> wait() { co_await timer_.async_wait(use_tuple); }
    void notify() { timer_.cancel(); }

private:
    net::steady_timer timer_;
};

class session_base : public std::enable_shared_from_this<session_base> {
public:
    session_base(executor_type ex, connection_limits const& limits, logger const& log,
                 std::uint64_t id, session_services services)
        : executor_(ex)
        , limits_(limits)
        , log_(log)
        , id_(id)
        , services_(services)
        , queue_(limits.max_send_queue_bytes, limits.slow_consumer)
        , state_changed_(ex)
    {
    }

    session_base(session_base const&) = delete;
    session_base& operator=(session_base const&) = delete;
    virtual ~session_base() = default;

    /// This thread: cuts the socket at once, for a client that outlives the
    /// shutdown grace period or never finishes its closing handshake.
    virtual void abort() = 0;

    /// This thread: the bytes this connection holds for the memory budget
    /// (see detail/memory_budget.hpp).
    virtual std::size_t held_bytes() const noexcept = 0;

    /// This thread: stops or restarts reading from the peer (the memory
    /// budget). A close request reads again: the peer's close frame is owed.
    virtual void pause_reading(bool paused) = 0;

    /// This thread: the connection expires at `when` (see
    /// websocket_view::expire_at).
    virtual void expire_at(std::chrono::system_clock::time_point when) = 0;

    executor_type const& executor() const noexcept { return executor_; }
    connection_limits const& limits() const noexcept { return limits_; }
    mallard::request const& request() const noexcept { return request_; }
    std::string const& subprotocol() const noexcept { return subprotocol_; }
    logger const& log() const noexcept { return log_; }
    std::uint64_t id() const noexcept { return id_; }

    /// The position of this connection's route in the router.
    std::size_t route_index() const noexcept { return services_.route_index; }

    /// This thread: bytes queued for the client and not yet handed to the
    /// stream.
    std::size_t queued_bytes() const noexcept { return queue_.bytes(); }

    /// This thread: counts a group publish by this connection's view.
    void count_publish() noexcept { services_.stats.published(); }

    /// Keeps the connection's place under the admission limits until it ends.
    void hold(admission::ticket place) noexcept { place_ = std::move(place); }

    /// Any thread: bytes queued for the client and not yet written, as its
    /// own thread last left them.
    std::size_t buffered_amount() const noexcept
    {
        return buffered_.load(std::memory_order_relaxed);
    }

    /// Any thread: false once a close is requested or the connection ended.
    bool is_open() const noexcept { return !closing_.load(std::memory_order_acquire); }

    /// Any thread: queues `message` without waiting. From another thread the
    /// message is posted to this session's thread and reported as queued.
    send_status send_now(outbound_message message)
    {
        if (!is_open())
            return send_status::closed;
        if (executor_.running_in_this_thread())
            return enqueue(std::move(message));
        net::post(executor_, [self = shared_from_this(), m = std::move(message)]() mutable {
            (void)self->enqueue(std::move(m));
        });
        return send_status::queued;
    }

    /// A buffer for an outgoing message: a written message's, on this
    /// session's thread, when one is free; otherwise an empty string.
    std::string spare_buffer() noexcept
    {
        return executor_.running_in_this_thread() ? queue_.take_spare() : std::string{};
    }

    /// This thread: whether the queue holds more than its high-water mark;
    /// a view pushing to its own client then waits in `until_drained`, so
    /// that it can never outrun the client.
    bool over_high_water() const noexcept
    {
        return is_open() && queue_.bytes() > limits_.send_queue_high_water;
    }

    /// This thread: waits until the queue is back at its high-water mark or
    /// the connection closes. (A coroutine of its own, so that a send below
    /// the mark makes no coroutine frame.)
    task<void> until_drained()
    {
        while (over_high_water()) {
            ++throttled_;
            co_await state_changed_.wait();
            --throttled_;
        }
    }

    /// Any thread: asks for a close handshake with `code` and `reason`.
    /// Only the first request counts.
    void close(close_code code, std::string reason, close_cause cause)
    {
        if (executor_.running_in_this_thread()) {
            request_close(code, std::move(reason), cause);
            return;
        }
        net::post(executor_, [self = shared_from_this(), code, r = std::move(reason), cause]() mutable {
            self->request_close(code, std::move(r), cause);
        });
    }

    /// Runs `t` on this session's thread until it finishes or the connection
    /// ends, whichever is first. A task spawned after the end never starts.
    void spawn(task<void> t)
    {
        if (!is_open())
            return;
        auto const slot = tasks_.emplace(tasks_.end());
        net::co_spawn(executor_, std::move(t),
                      net::bind_cancellation_slot(
                          slot->slot(), [self = shared_from_this(), slot](std::exception_ptr e) {
                              self->task_finished(slot, e);
                          }));
    }

    /// This thread: joins `group` for its live messages; membership ends
    /// with the connection. Joining a group it is a member of already does
    /// nothing.
    void join(std::string group)
    {
        if (!is_open() || std::find(groups_.begin(), groups_.end(), group) != groups_.end())
            return;
        groups_.push_back(group);
        (void)services_.groups.join(services_.worker_index, *this, group, {}, 0);
    }

    /// This thread: joins `group` from a position (see websocket_view::join);
    /// waits while the group's history is read elsewhere. (Its arguments
    /// live in the caller's frame, which awaits it at once: see
    /// websocket_view::join.)
    task<join_result> join_from(std::string const& group, join_request const& request)
    {
        join_result result;
        if (is_open() && std::find(groups_.begin(), groups_.end(), group) == groups_.end()) {
            groups_.push_back(group);
            auto const read = start_read();
            auto now = services_.groups.join(services_.worker_index, *this, group, request,
                                             read->ticket);
            if (now) {
                reads_.erase(read);
                result = std::move(*now);
            } else {
                auto got = co_await until_read(read);
                if (!ended_) // else the member is gone with the connection
                    result = services_.groups.finish_join(services_.worker_index, *this, group,
                                                          std::move(got));
            }
        }
        co_return result;
    }

    /// This thread: the history of `group`, wherever it is kept.
    task<group_history> read_history(std::string const& group)
    {
        auto const read = start_read();
        services_.groups.read_history(
            group, [self = weak_from_this(), ticket = read->ticket](group_history history) {
                if (auto alive = self.lock())
                    alive->history_read(ticket, {false, std::move(history.messages),
                                                 std::move(history.position)});
            });
        auto got = co_await until_read(read);
        group_history history;
        history.position = std::move(got.position);
        history.messages = std::move(got.messages);
        co_return history;
    }

    /// Any thread: what a read of this session's (`ticket`) brought.
    void history_read(std::uint64_t ticket, join_result result)
    {
        if (!executor_.running_in_this_thread()) {
            net::post(executor_, [self = shared_from_this(), ticket, r = std::move(result)]() mutable {
                self->history_read(ticket, std::move(r));
            });
            return;
        }
        for (auto& read : reads_)
            if (read.ticket == ticket) {
                read.result = std::move(result);
                state_changed_.notify();
            }
    }

    /// This thread: leaves `group`, if a member.
    void leave(std::string const& group)
    {
        auto const found = std::find(groups_.begin(), groups_.end(), group);
        if (found == groups_.end())
            return;
        services_.groups.leave(services_.worker_index, *this, group);
        groups_.erase(found);
    }

    group_hub& groups() const noexcept { return services_.groups; }

private:
    // A history read this session waits for; in reads_.
    struct pending_read {
        std::uint64_t ticket;
        std::optional<join_result> result;
    };

    std::list<pending_read>::iterator start_read()
    {
        return reads_.insert(reads_.end(), pending_read{++last_read_, std::nullopt});
    }

    // This thread: waits for `read`'s result; an empty one when the
    // connection ends first.
    task<join_result> until_read(std::list<pending_read>::iterator read)
    {
        while (!read->result && !ended_)
            co_await state_changed_.wait();
        join_result result;
        if (read->result)
            result = std::move(*read->result);
        reads_.erase(read);
        co_return result;
    }

public:

protected:
    /// This thread: records the close request and wakes the writer to send it.
    void request_close(close_code code, std::string reason, close_cause cause)
    {
        if (close_request_ || ended_)
            return;
        if (reason.size() > 123) // a close frame's payload is at most 125 bytes
            reason.resize(123);
        close_request_ = close_request{code, std::move(reason), cause};
        closing_.store(true, std::memory_order_release);
        if (cause == close_cause::slow_consumer || cause == close_cause::shutdown ||
            cause == close_cause::send_timeout || cause == close_cause::memory_budget ||
            cause == close_cause::pong_timeout) {
            queue_.clear_waiting(); // the backlog is the problem: do not wait for it
            note_buffered();
        }
        state_changed_.notify();
        close_requested();
    }

    /// Called once a close is requested, so the session can bound it in
    /// time and have its writer send the close frame.
    virtual void close_requested() = 0;

    /// This thread: a message was queued; the writer starts on it now if it
    /// has nothing in flight.
    virtual void message_queued() = 0;

    /// This thread: the reader has ended; the writer finishes.
    virtual void reader_ended() = 0;

    /// This thread: the reader has finished; nothing more will be sent.
    void mark_ended()
    {
        for (auto const& group : groups_)
            services_.groups.leave(services_.worker_index, *this, group);
        groups_.clear();
        ended_ = true;
        closing_.store(true, std::memory_order_release);
        queue_.clear_waiting();
        note_buffered();
        place_.release(); // no longer a connection the limits count
        state_changed_.notify();
        reader_ended();
    }

    /// This thread: called by the writer after each completed write.
    void wrote_one()
    {
        queue_.end_write();
        note_buffered();
        if (throttled_ != 0 && queue_.bytes() <= limits_.send_queue_high_water)
            state_changed_.notify();
    }

    /// Cancels every spawned task and waits until all have finished.
    task<void> stop_tasks()
    {
        for (auto& signal : tasks_)
            signal.emit(net::cancellation_type::terminal);
        while (!tasks_.empty())
            co_await state_changed_.wait();
    }

    /// A view's callback threw: counted, and logged naming it.
    void log_exception(handler_callback callback, std::exception_ptr e)
    {
        services_.stats.threw(callback);
        if (!log_.enabled(log_level::error))
            return;
        log_.write(log_level::error, log_category::diagnostic,
                   "connection " + std::to_string(id_) + " " + request_.path() + ": " +
                       (callback == handler_callback::task ? std::string("a spawned task")
                                                           : std::string(to_string(callback))) +
                       " threw: " + describe(e));
    }

    /// A handler threw: log it and close with 1011, as RFC 6455 section 7.4.1 names.
    void handler_failed(handler_callback callback, std::exception_ptr e)
    {
        log_exception(callback, e);
        request_close(close_code::internal_error, "internal error", close_cause::handler_error);
    }

    executor_type executor_;
    connection_limits const& limits_; // the route's: routes outlive every connection
    logger const& log_;
    std::uint64_t id_;
    session_services services_;
    mallard::request request_;
    std::string subprotocol_;
    send_queue queue_;
    std::optional<close_request> close_request_;
    bool ended_ = false;
    event state_changed_; // see event: every wait of this connection's coroutines

private:
    send_status enqueue(outbound_message message)
    {
        if (!is_open())
            return send_status::closed;
        auto const dropped_before = queue_.dropped();
        auto const result = queue_.push(std::move(message));
        note_buffered();
        if (queue_.dropped() != dropped_before)
            services_.stats.dropped(queue_.dropped() - dropped_before);
        switch (result) {
        case send_queue::push_result::queued:
            message_queued();
            return send_status::queued;
        case send_queue::push_result::dropped:
            return send_status::dropped;
        case send_queue::push_result::overflow:
            break;
        }
        request_close(close_code::policy_violation, "send queue full", close_cause::slow_consumer);
        return send_status::closed;
    }

    void task_finished(std::list<net::cancellation_signal>::iterator slot, std::exception_ptr e)
    {
        tasks_.erase(slot);
        if (e && !ended_) {
            bool cancelled = false;
            try {
                std::rethrow_exception(e);
            } catch (boost::system::system_error const& error) {
                cancelled = error.code() == net::error::operation_aborted;
            } catch (...) {
            }
            if (!cancelled)
                handler_failed(handler_callback::task, e);
        }
        if (tasks_.empty())
            state_changed_.notify();
    }

    // One writer, its own thread; read by buffered_amount() from any.
    void note_buffered() noexcept { buffered_.store(queue_.bytes(), std::memory_order_relaxed); }

    std::atomic<bool> closing_{false};
    std::atomic<std::size_t> buffered_{0};
    admission::ticket place_;
    std::list<net::cancellation_signal> tasks_;
    unsigned throttled_ = 0;
    std::vector<std::string> groups_; // few per connection: a vector beats a set
    std::list<pending_read> reads_;   // history reads waited for (joins, history())
    std::uint64_t last_read_ = 0;
};

} // namespace mallard::detail

#endif
