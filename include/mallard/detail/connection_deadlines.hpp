// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_CONNECTION_DEADLINES_HPP
#define MALLARD_DETAIL_CONNECTION_DEADLINES_HPP

// What a connection's deadlines decide, without I/O: the receive timeout
// (nothing from the peer), the send timeout (what is queued for the peer
// makes no progress), the keep-alive ping and the pong it is owed, the
// connection's max lifetime and
// the expiry a view sets (with a notice before it), and, once a close is requested,
// the deadline by which the close must be done (a client that stopped
// reading could hold the close frame back forever). The session looks when
// the time given by next_look() has come (see deadline_wheel.hpp) and does
// what look() says.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>

namespace mallard::detail {

/// What the connection shows at a look.
struct deadline_inputs {
    bool close_requested = false;
    std::chrono::steady_clock::time_point close_deadline{};
    bool in_handler = false;      // a handler is running: a busy view is not an idle peer
    std::uint64_t bytes_read = 0; // every byte from the peer, a frame's middle too
    bool sending = false;         // the writer has something to write, or is writing it
    std::uint64_t writes_done = 0; // writes and flushes completed
};

enum class deadline_action {
    none,
    abort,           // the close deadline passed: cut the socket
    send_timeout,    // close with 1008
    receive_timeout, // close with 1001
    ping,
    pong_timeout,     // a ping went unanswered: close with 1001, briefly
    expiring,         // the expiry is near: tell the view, once
    expired,          // close with 3000
    lifetime_reached, // close with 3008
};

class connection_deadlines {
public:
    using clock = std::chrono::steady_clock;

    struct intervals {
        std::chrono::milliseconds receive_timeout{0}; // zero: none
        std::chrono::milliseconds send_timeout{0};
        std::chrono::milliseconds ping_interval{0};
        std::chrono::milliseconds max_lifetime{0};
        std::chrono::milliseconds expiry_notice{0}; // before an expiry set with expire_at
        std::chrono::milliseconds pong_timeout{0};  // after a ping; zero: none
    };

    connection_deadlines(intervals limits, clock::time_point now)
        : limits_(limits)
        , last_activity_(now)
        , next_ping_(now + limits.ping_interval)
        , send_progress_(now)
        , lifetime_end_(limits.max_lifetime.count() != 0 ? now + limits.max_lifetime
                                                         : clock::time_point::max())
    {
    }

    /// The connection expires at `when` (replacing an earlier expiry); the
    /// view is told expiry_notice before.
    void expire_at(clock::time_point when) noexcept
    {
        expiry_ = when;
        notice_given_ = false;
    }

    /// The peer did something (a read starts, a control frame arrived).
    void activity(clock::time_point now) noexcept { last_activity_ = now; }

    /// A pong arrived: the ping sent last is answered. Any pong counts (ours
    /// carry no payload), data frames do not: a peer that sends but never
    /// answers pings breaks RFC 6455 section 5.5.2.
    void pong_received() noexcept { pong_due_ = clock::time_point::max(); }

    /// The writer started sending while the next look was set without it
    /// (it looks every quarter of the send timeout only while sending):
    /// true once, and the look should come now.
    bool wake_for_sending() noexcept { return std::exchange(asleep_, false); }

    /// When to look next; clock::time_point::max() for never.
    clock::time_point next_look(clock::time_point now, deadline_inputs const& in) noexcept
    {
        asleep_ = false;
        if (in.close_requested)
            return in.close_deadline;
        auto wake = clock::time_point::max();
        if (limits_.receive_timeout.count() != 0)
            wake = last_activity_ + limits_.receive_timeout;
        if (limits_.send_timeout.count() != 0) {
            wake = std::min(wake, send_progress_ + limits_.send_timeout);
            if (in.sending)
                wake = std::min(wake, now + limits_.send_timeout / 4);
            else
                asleep_ = true;
        }
        if (limits_.ping_interval.count() != 0)
            wake = std::min(wake, next_ping_);
        wake = std::min({wake, lifetime_end_, expiry_, pong_due_});
        if (!notice_given_ && expiry_ != clock::time_point::max())
            wake = std::min(wake, notice_time());
        return wake;
    }

    /// A look at `now`: what to do. While the writer has something to
    /// write it looks every quarter of the send timeout, so a client that
    /// stops reading is closed within 1.25 times the send timeout of the
    /// last progress.
    deadline_action look(clock::time_point now, deadline_inputs const& in) noexcept
    {
        if (in.close_requested)
            return now >= in.close_deadline ? deadline_action::abort : deadline_action::none;
        if (now >= expiry_)
            return deadline_action::expired;
        if (now >= lifetime_end_)
            return deadline_action::lifetime_reached;
        if (!notice_given_ && expiry_ != clock::time_point::max() && now >= notice_time()) {
            notice_given_ = true;
            return deadline_action::expiring;
        }
        if (now >= pong_due_) {
            pong_due_ = clock::time_point::max();
            return deadline_action::pong_timeout;
        }
        if (in.in_handler)
            last_activity_ = now;
        if (in.bytes_read != bytes_seen_) {
            bytes_seen_ = in.bytes_read;
            last_activity_ = now;
        }
        // Progress: the writer idle, or a write done since the last look.
        if (!in.sending || in.writes_done != writes_seen_) {
            writes_seen_ = in.writes_done;
            send_progress_ = now;
        }
        if (limits_.send_timeout.count() != 0 && now >= send_progress_ + limits_.send_timeout)
            return deadline_action::send_timeout;
        if (limits_.receive_timeout.count() != 0 && now >= last_activity_ + limits_.receive_timeout)
            return deadline_action::receive_timeout;
        if (limits_.ping_interval.count() != 0 && now >= next_ping_) {
            next_ping_ = now + limits_.ping_interval;
            // The first unanswered ping sets the deadline: later ones, sent
            // while it waits, do not push it back.
            if (limits_.pong_timeout.count() != 0 && pong_due_ == clock::time_point::max())
                pong_due_ = now + limits_.pong_timeout;
            return deadline_action::ping;
        }
        return deadline_action::none;
    }

private:
    // Only with an expiry set: expire_at keeps it within a century of now.
    clock::time_point notice_time() const noexcept
    {
        return expiry_ - std::chrono::duration_cast<clock::duration>(limits_.expiry_notice);
    }

    intervals limits_;
    clock::time_point last_activity_;
    clock::time_point next_ping_;
    clock::time_point send_progress_; // when the writer last wrote, or had nothing to
    std::uint64_t bytes_seen_ = 0;    // bytes_read at the last look
    std::uint64_t writes_seen_ = 0;   // writes_done at the last look
    bool asleep_ = false;             // the next look was set without the writer sending
    clock::time_point lifetime_end_;  // max_lifetime after the start; max() for none
    clock::time_point expiry_ = clock::time_point::max(); // set by expire_at
    bool notice_given_ = false;       // the view was told of expiry_
    clock::time_point pong_due_ = clock::time_point::max(); // a ping awaits its pong until then
};

} // namespace mallard::detail

#endif
