// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_SEND_QUEUE_HPP
#define MALLARD_DETAIL_SEND_QUEUE_HPP

// A connection's outbound messages, counted in bytes and bounded by the
// route's slow-consumer policy. Sans-I/O: the session's writer drives it;
// unit tests drive it directly.
//
// Beast allows one write in flight per stream, so the writer takes the front
// message out as "in flight" while its async_write runs: the policies never
// drop or move it, because Beast still reads its bytes.

#include <mallard/detail/outbound_message.hpp>
#include <mallard/options.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <string_view>
#include <utility>

namespace mallard::detail {

class send_queue {
public:
    enum class push_result {
        queued,   ///< the message is waiting to be written
        dropped,  ///< the policy discarded the message itself
        overflow, ///< the bound is passed and the policy is close: nothing queued
    };

    send_queue(std::size_t max_bytes, slow_consumer_policy policy) noexcept
        : max_bytes_(max_bytes), policy_(policy)
    {
    }

    /// Queues `message` under the policy. A message always fits a queue with
    /// nothing in it, so one message larger than the bound can still be sent.
    push_result push(outbound_message message)
    {
        auto const size = message.bytes().size();
        if (message.type != outbound_message::kind::ping) {
            switch (policy_) {
            case slow_consumer_policy::close:
                if (bytes_ != 0 && bytes_ + size > max_bytes_)
                    return push_result::overflow;
                break;
            case slow_consumer_policy::drop_oldest:
                while (bytes_ + size > max_bytes_ && drop_oldest_waiting())
                    ;
                if (bytes_ != 0 && bytes_ + size > max_bytes_) {
                    ++dropped_;
                    return push_result::dropped;
                }
                break;
            case slow_consumer_policy::keep_latest:
                while (drop_oldest_waiting())
                    ;
                break;
            }
        }
        bytes_ += size;
        if (head_ > compact_after && head_ * 2 > messages_.size()) { // a long backlog
            messages_.erase(messages_.begin(), messages_.begin() + static_cast<long>(head_));
            head_ = 0;
        }
        messages_.push_back(std::move(message));
        ++queued_;
        return push_result::queued;
    }

    /// Whether a message waits that is not already being written.
    bool has_waiting() const noexcept { return head_ < messages_.size(); }
    /// How many wait (not counting the one being written).
    std::size_t waiting() const noexcept { return messages_.size() - head_; }
    /// The message `begin_write` would take next; only while `has_waiting()`.
    outbound_message const& next_waiting() const noexcept { return messages_[head_]; }
    /// The size of the message being written; 0 if none.
    std::size_t in_flight_bytes() const noexcept
    {
        return in_flight_ ? in_flight_->bytes().size() : 0;
    }

    /// Moves the oldest message out of the queue to be written and returns
    /// it. It is kept apart until `end_write`: erasing from the middle of a
    /// deque moves its elements, and Beast is still reading these bytes.
    outbound_message const& begin_write()
    {
        in_flight_.emplace(std::move(messages_[head_]));
        if (++head_ == messages_.size()) { // emptied: start over, keeping the capacity
            messages_.clear();
            head_ = 0;
        }
        return *in_flight_;
    }

    /// Forgets the message that `begin_write` returned, keeping its buffer
    /// for a later message (see `take_spare`).
    void end_write() noexcept
    {
        bytes_ -= in_flight_->bytes().size();
        auto& buffer = in_flight_->owned;
        // (A string that never left its inline storage is not worth keeping.)
        if (spares_.size() < max_spares && buffer.capacity() > std::string().capacity() &&
            buffer.capacity() <= max_spare_bytes) {
            buffer.clear();
            spares_.push_back(std::move(buffer));
        }
        in_flight_.reset();
    }

    /// An empty string with the capacity of a message already written, when
    /// there is one: a connection that keeps sending messages of similar
    /// size does not allocate for them.
    std::string take_spare() noexcept
    {
        if (spares_.empty())
            return {};
        auto spare = std::move(spares_.back());
        spares_.pop_back();
        return spare;
    }

    /// Bytes queued, including the message being written.
    std::size_t bytes() const noexcept { return bytes_; }
    /// Messages queued, including the one being written.
    std::size_t size() const noexcept
    {
        return messages_.size() - head_ + (in_flight_ ? 1u : 0u);
    }
    /// Messages queued so far (`push` returned `queued`).
    std::uint64_t queued() const noexcept { return queued_; }
    /// Of those, how many no longer wait: taken to be written, dropped or
    /// cleared. `departed() >= n` once the first n queued messages all left
    /// (pings aside, messages leave in order).
    std::uint64_t departed() const noexcept { return queued_ - (messages_.size() - head_); }
    /// Messages discarded by the policy so far.
    std::uint64_t dropped() const noexcept { return dropped_; }

    /// Forgets every message not in flight (the connection is closing).
    void clear_waiting() noexcept
    {
        for (auto i = head_; i < messages_.size(); ++i)
            bytes_ -= messages_[i].bytes().size();
        messages_.clear();
        head_ = 0;
    }

private:
    // Drops the oldest waiting data message; false if none.
    bool drop_oldest_waiting() noexcept
    {
        for (auto it = messages_.begin() + static_cast<long>(head_); it != messages_.end(); ++it) {
            if (it->type == outbound_message::kind::ping)
                continue;
            bytes_ -= it->bytes().size();
            messages_.erase(it);
            ++dropped_;
            return true;
        }
        return false;
    }

    // Waiting messages are [head_, end): a vector whose capacity stays, so
    // a steady stream of messages allocates nothing (a deque allocates and
    // frees a block every few messages).
    std::vector<outbound_message> messages_;
    std::size_t head_ = 0;
    static constexpr std::size_t compact_after = 64;
    std::size_t bytes_ = 0;
    std::size_t max_bytes_;
    slow_consumer_policy policy_;
    std::uint64_t dropped_ = 0;
    std::uint64_t queued_ = 0;
    std::optional<outbound_message> in_flight_;

    // A few buffers of written messages, none large: an idle connection
    // keeps at most max_spares * max_spare_bytes.
    static constexpr std::size_t max_spares = 2;
    static constexpr std::size_t max_spare_bytes = 16 * 1024;
    std::vector<std::string> spares_;
};

} // namespace mallard::detail

#endif
