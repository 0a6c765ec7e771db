// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_LOG_THROTTLE_HPP
#define MALLARD_DETAIL_LOG_THROTTLE_HPP

// A log line that can repeat many times a second (accept failing while the
// process is out of file descriptors) is written at most once per interval,
// with the count of the ones held back. Sans-I/O: the caller passes the time.

#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

namespace mallard::detail {

class log_throttle {
public:
    using clock = std::chrono::steady_clock;

    explicit log_throttle(clock::duration interval) noexcept : interval_(interval) {}

    /// Whether to write the line at `now`: the number of lines held back
    /// since the last one written, or nothing to hold this one back too.
    std::optional<std::uint64_t> admit(clock::time_point now) noexcept
    {
        if (last_ && now - *last_ < interval_) {
            ++held_;
            return std::nullopt;
        }
        last_ = now;
        return std::exchange(held_, 0);
    }

private:
    clock::duration interval_;
    std::optional<clock::time_point> last_;
    std::uint64_t held_ = 0;
};

} // namespace mallard::detail

#endif
