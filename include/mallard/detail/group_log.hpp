// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_GROUP_LOG_HPP
#define MALLARD_DETAIL_GROUP_LOG_HPP

// One group's history in this process, sans I/O: numbers each message,
// keeps the newest within the policy's bounds, and decides what a member
// joining from a position gets back. Its owner (detail::fanout) serializes
// every call.

#include <mallard/group_history.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mallard::detail {

/// What a join from `from` gets: whether it recovers, and the offset after
/// which the kept messages are handed back.
struct recovery_decision {
    bool recovered = false;
    std::uint64_t after = 0;
};

/** Whether a client at `from` can be brought up to date from a history of
    epoch `epoch` that keeps the messages `first_kept` to `last` (none when
    `first_kept > last`).

    It can when the epochs match and nothing after its offset has been
    forgotten; a position past `last` is not one this history gave out.
    Otherwise it gets every kept message, to start afresh.
*/
inline recovery_decision decide_recovery(since const& from, std::string const& epoch,
                                         std::uint64_t first_kept, std::uint64_t last)
{
    auto const fresh = recovery_decision{false, first_kept == 0 ? 0 : first_kept - 1};
    if (from.epoch.empty() || from.epoch != epoch || from.offset > last)
        return fresh;
    if (from.offset + 1 < first_kept) // something after it was forgotten
        return fresh;
    return {true, from.offset};
}

class group_log {
public:
    using clock = std::chrono::system_clock;

    /// `max_messages` > 0; `max_age` 0: no age bound.
    group_log(std::string epoch, std::size_t max_messages, std::chrono::milliseconds max_age)
        : epoch_(std::move(epoch)), max_messages_(max_messages), max_age_(max_age)
    {
    }

    /// Adds a message; returns it with its offset.
    history_entry const& append(std::shared_ptr<std::string const> payload, opcode op,
                                clock::time_point now)
    {
        entries_.push_back({++last_, std::move(payload), op, now});
        if (entries_.size() > max_messages_)
            entries_.pop_front();
        forget_old(now);
        return entries_.back();
    }

    /// Forgets the messages older than the age bound.
    void forget_old(clock::time_point now)
    {
        if (max_age_.count() == 0)
            return;
        while (!entries_.empty() && now - entries_.front().time > max_age_)
            entries_.pop_front();
    }

    /// What a member joining from `from` gets (see join_result).
    join_result recover(since const& from, clock::time_point now)
    {
        forget_old(now);
        auto const decision = decide_recovery(from, epoch_, first_kept(), last_);
        join_result result;
        result.recovered = decision.recovered;
        result.position = position();
        for (auto const& entry : entries_)
            if (entry.offset > decision.after)
                result.messages.push_back(entry);
        return result;
    }

    group_history snapshot(clock::time_point now)
    {
        forget_old(now);
        return {position(), {entries_.begin(), entries_.end()}};
    }

    history_position position() const { return {last_, epoch_}; }
    std::uint64_t last_offset() const noexcept { return last_; }
    std::string const& epoch() const noexcept { return epoch_; }
    bool empty() const noexcept { return entries_.empty(); }
    std::size_t size() const noexcept { return entries_.size(); }

private:
    /// The offset of the oldest message kept; last_ + 1 when none is.
    std::uint64_t first_kept() const noexcept
    {
        return entries_.empty() ? last_ + 1 : entries_.front().offset;
    }

    std::string epoch_;
    std::size_t max_messages_;
    std::chrono::milliseconds max_age_;
    std::uint64_t last_ = 0;
    std::deque<history_entry> entries_;
};

} // namespace mallard::detail

#endif
