// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_DEADLINE_WHEEL_HPP
#define MALLARD_DETAIL_DEADLINE_WHEEL_HPP

// Every per-connection deadline of one worker (receive timeout, send
// timeout, keep-alive ping, close deadline) on one timer: a hashed timing
// wheel. A connection is an `entry` (two pointers and a time, no operation
// in flight, no coroutine frame); the worker's single steady_timer ticks
// while any entry is scheduled, and each tick visits only the slot whose
// time has come. An entry fires at or after its due time, at most about one
// tick late, so the tick follows the smallest interval the server's routes
// configure (see choose_tick).
//
// Touched only on the worker's thread.

#include <mallard/detail/config.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace mallard::detail {

/// The wheel's tick for deadlines of the given intervals (zero: unused): an
/// eighth of the smallest, so a deadline fires within 1/8 of its interval
/// late, between 1 ms (no busier) and 250 ms (coarser gains nothing).
inline std::chrono::milliseconds choose_tick(std::initializer_list<std::chrono::milliseconds> intervals)
{
    using std::chrono::milliseconds;
    auto smallest = milliseconds::max();
    for (auto const interval : intervals)
        if (interval.count() > 0)
            smallest = std::min(smallest, interval);
    if (smallest == milliseconds::max())
        return milliseconds{250};
    return std::clamp(smallest / 8, milliseconds{1}, milliseconds{250});
}

class deadline_wheel {
public:
    using clock = std::chrono::steady_clock;

    /// Something with a deadline. Not copyable or movable: the wheel holds
    /// its address while it is scheduled. The owner cancels it before it is
    /// destroyed.
    class entry {
    public:
        entry() = default;
        entry(entry const&) = delete;
        entry& operator=(entry const&) = delete;

        bool scheduled() const noexcept { return next_ != nullptr; }

    protected:
        ~entry() = default;

        /// The due time has come (`now` is at or after it); the entry is no
        /// longer scheduled. It may schedule itself again.
        virtual void on_due(clock::time_point now) = 0;

    private:
        friend class deadline_wheel;

        void unlink() noexcept
        {
            prev_->next_ = next_;
            next_->prev_ = prev_;
            prev_ = next_ = nullptr;
        }

        entry* prev_ = nullptr;
        entry* next_ = nullptr;
        clock::time_point due_{};
    };

    deadline_wheel(net::io_context& loop, clock::duration tick)
        : timer_(loop)
        , tick_(std::max(tick, clock::duration{1}))
        , epoch_(clock::now())
    {
        for (auto& head : slots_)
            head.prev_ = head.next_ = &head;
    }

    deadline_wheel(deadline_wheel const&) = delete;
    deadline_wheel& operator=(deadline_wheel const&) = delete;

    /// Entries scheduled.
    std::size_t size() const noexcept { return size_; }

    /// Makes `e` due at `due` (moving it if it was scheduled already); a
    /// time already past fires at the next tick.
    void schedule(entry& e, clock::time_point due)
    {
        if (e.scheduled()) {
            e.unlink();
            --size_;
        }
        e.due_ = due;
        link(e, slot_of(due));
        ++size_;
        if (!armed_)
            arm();
    }

    /// Unschedules `e`; nothing if it was not scheduled.
    void cancel(entry& e) noexcept
    {
        if (!e.scheduled())
            return;
        e.unlink();
        if (--size_ == 0 && armed_) {
            // Nothing left: the loop need not wake for this wheel.
            timer_.cancel();
            armed_ = false;
        }
    }

private:
    static constexpr std::size_t slot_count = 512;

    // A dummy entry heads each slot's circular list; it never fires.
    struct head final : entry {
        void on_due(clock::time_point) override {}
    };

    // The tick at or after `t`: an entry due at t goes to that tick's slot,
    // visited once the tick's time has passed, so it never fires early.
    std::uint64_t tick_of(clock::time_point t) const noexcept
    {
        if (t <= epoch_)
            return 0;
        return static_cast<std::uint64_t>((t - epoch_ + tick_ - clock::duration{1}) / tick_);
    }

    // The last tick whose time has passed at `now`.
    std::uint64_t passed_ticks(clock::time_point now) const noexcept
    {
        return now <= epoch_ ? 0 : static_cast<std::uint64_t>((now - epoch_) / tick_);
    }

    entry& slot_of(clock::time_point due) noexcept
    {
        auto const ticks = std::max(tick_of(due), done_ + 1);
        return slots_[ticks % slot_count];
    }

    static void link(entry& e, entry& head) noexcept
    {
        e.prev_ = head.prev_;
        e.next_ = &head;
        head.prev_->next_ = &e;
        head.prev_ = &e;
    }

    void arm()
    {
        armed_ = true;
        timer_.expires_at(epoch_ + tick_ * static_cast<clock::rep>(done_ + 1));
        timer_.async_wait([this](boost::system::error_code ec) {
            if (ec)
                return; // cancelled: nothing scheduled (or the loop is going away)
            armed_ = false;
            turn(clock::now());
        });
    }

    // Fires what is due in every slot from the last tick done up to now. An
    // entry found in its slot a lap early (due more than slot_count ticks
    // ahead) stays.
    void turn(clock::time_point now)
    {
        auto const reached = passed_ticks(now);
        auto visits = std::min<std::uint64_t>(reached > done_ ? reached - done_ : 0, slot_count);
        for (; visits != 0; --visits) {
            // done_ first: an entry scheduled by a handler below, for a time
            // already past, goes to the next slot, not to this one's next lap.
            ++done_;
            auto& slot = slots_[done_ % slot_count];
            if (slot.next_ == &slot)
                continue;
            // The slot's entries move to a list of our own, so that an entry
            // scheduled again into this slot waits for its lap, and an entry
            // cancelled by another's handler leaves this list cleanly.
            head pending;
            pending.next_ = slot.next_;
            pending.prev_ = slot.prev_;
            pending.next_->prev_ = &pending;
            pending.prev_->next_ = &pending;
            slot.prev_ = slot.next_ = &slot;
            while (pending.next_ != &pending) {
                entry& e = *pending.next_;
                e.unlink();
                if (e.due_ > now) {
                    link(e, slot_of(e.due_));
                    continue;
                }
                --size_;
                e.on_due(now);
            }
        }
        done_ = std::max(done_, reached);
        if (size_ != 0 && !armed_)
            arm();
    }

    net::steady_timer timer_;
    clock::duration tick_;
    clock::time_point epoch_;
    std::uint64_t done_ = 0; // the last tick whose slot has been visited
    std::size_t size_ = 0;
    bool armed_ = false;
    std::array<head, slot_count> slots_;
};

} // namespace mallard::detail

#endif
