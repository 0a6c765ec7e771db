// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_RECEIVE_LIMITER_HPP
#define MALLARD_DETAIL_RECEIVE_LIMITER_HPP

// A route's receive_rate applied to one connection, without I/O: what each
// message read from the client means for the next read. The session reads
// a message, asks, and then delivers it and reads on, delivers it and waits
// before reading on, or closes with 1008 (detail/session.hpp).

#include <mallard/options.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace mallard::detail {

/// A token bucket: `burst` tokens at most, `rate` more every second. It may
/// go into debt (below zero): the time the debt takes to repay is the wait.
class token_bucket {
public:
    using clock = std::chrono::steady_clock;

    token_bucket(double rate, double burst, clock::time_point now)
        : rate_(rate), burst_(burst), tokens_(burst), refilled_(now)
    {
    }

    /// Whether `amount` tokens are there at `now`.
    bool holds(double amount, clock::time_point now)
    {
        refill(now);
        return tokens_ >= amount;
    }

    /// Takes `amount` tokens at `now`, into debt if need be; returns how
    /// long until the debt is repaid (zero when there is none).
    clock::duration take(double amount, clock::time_point now)
    {
        refill(now);
        tokens_ -= amount;
        if (tokens_ >= 0)
            return clock::duration::zero();
        return std::chrono::duration_cast<clock::duration>(
            std::chrono::duration<double>(-tokens_ / rate_));
    }

private:
    void refill(clock::time_point now)
    {
        if (now <= refilled_)
            return;
        tokens_ = std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - refilled_).count());
        refilled_ = now;
    }

    double rate_;
    double burst_;
    double tokens_;
    clock::time_point refilled_;
};

/// What a message read from the client means for the connection.
struct receive_verdict {
    enum class kind {
        go_on, ///< deliver it and read on
        pause, ///< deliver it, then wait `wait` before reading again
        close, ///< do not deliver it: close with 1008 "rate limit"
    } what = kind::go_on;
    std::chrono::steady_clock::duration wait{};
};

/// One connection's receive_rate: a bucket for messages and one for bytes.
class receive_limiter {
public:
    using clock = token_bucket::clock;

    /// `rate` as resolve_limits left it: bursts set wherever a rate is.
    receive_limiter(rate_limit const& rate, clock::time_point now)
        : action_(rate.action)
        , messages_(rate.messages_per_second, rate.message_burst, now)
        , bytes_(rate.bytes_per_second, rate.byte_burst, now)
        , limits_messages_(rate.messages_per_second > 0)
        , limits_bytes_(rate.bytes_per_second > 0)
    {
    }

    /// A message of `bytes` payload bytes has been read at `now`.
    receive_verdict received(std::size_t bytes, clock::time_point now)
    {
        auto const size = static_cast<double>(bytes);
        if (action_ == rate_limit_action::close) {
            if ((limits_messages_ && !messages_.holds(1, now)) ||
                (limits_bytes_ && !bytes_.holds(size, now)))
                return {receive_verdict::kind::close, {}};
        }
        auto wait = clock::duration::zero();
        if (limits_messages_)
            wait = std::max(wait, messages_.take(1, now));
        if (limits_bytes_)
            wait = std::max(wait, bytes_.take(size, now));
        if (wait == clock::duration::zero())
            return {};
        return {receive_verdict::kind::pause, wait};
    }

private:
    rate_limit_action action_;
    token_bucket messages_;
    token_bucket bytes_;
    bool limits_messages_;
    bool limits_bytes_;
};

} // namespace mallard::detail

#endif
