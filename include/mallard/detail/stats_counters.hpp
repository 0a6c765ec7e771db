// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_STATS_COUNTERS_HPP
#define MALLARD_DETAIL_STATS_COUNTERS_HPP

// The counters of one route's connections on one worker. Written only by the
// worker's own thread (relaxed atomics, so no cache line is shared between
// threads on the hot path), read by anyone through server::metrics() and
// server::stats(), which sum them over the workers.

#include <mallard/close_reason.hpp>
#include <mallard/server_metrics.hpp>
#include <mallard/server_stats.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mallard::detail {

class stats_counters {
public:
    void opened() noexcept { add(connections_opened_, 1); }
    void received(std::uint64_t bytes) noexcept
    {
        add(messages_in_, 1);
        add(bytes_in_, bytes);
    }
    void sent(std::uint64_t bytes) noexcept
    {
        add(messages_out_, 1);
        add(bytes_out_, bytes);
    }
    void dropped(std::uint64_t count) noexcept { add(messages_dropped_, count); }
    void published() noexcept { add(publishes_, 1); }
    void rate_limited() noexcept { add(rate_limited_, 1); }
    void threw(handler_callback callback) noexcept
    {
        add(exceptions_[static_cast<std::size_t>(callback)], 1);
    }
    void closed(std::uint16_t code, close_cause cause) noexcept
    {
        add(closes_[static_cast<std::size_t>(cause)][code_slot(code)], 1);
    }

    /// The send queues at a sample (ten times a second): their sum and how
    /// many connections hold how much (see send_queue_depth_bounds).
    struct queue_sample {
        std::uint64_t bytes = 0;
        std::array<std::uint64_t, send_queue_depth_bounds.size() + 1> depth{};

        void add(std::uint64_t queued) noexcept
        {
            bytes += queued;
            std::size_t bucket = 0;
            while (bucket < send_queue_depth_bounds.size() && queued > send_queue_depth_bounds[bucket])
                ++bucket;
            ++depth[bucket];
        }
    };
    void sampled(queue_sample const& sample) noexcept
    {
        queue_bytes_.store(sample.bytes, std::memory_order_relaxed);
        for (std::size_t i = 0; i < sample.depth.size(); ++i)
            queue_depth_[i].store(sample.depth[i], std::memory_order_relaxed);
    }

    /// Adds this worker's counts to `total`. Closes are read before opens:
    /// a connection counted as closed has been counted as opened, so open
    /// (opened - closed) never goes below zero.
    void add_to(route_metrics& total) const
    {
        std::uint64_t closed = 0;
        for (std::size_t cause = 0; cause < cause_count; ++cause)
            for (std::size_t slot = 0; slot < code_slots; ++slot)
                if (auto const n = closes_[cause][slot].load(std::memory_order_relaxed)) {
                    closed += n;
                    add_close(total, code_of_slot(slot), static_cast<close_cause>(cause), n);
                }
        auto const opened = connections_opened_.load(std::memory_order_relaxed);
        total.connections_opened += opened;
        total.connections_open += opened - closed;
        total.messages_in += messages_in_.load(std::memory_order_relaxed);
        total.bytes_in += bytes_in_.load(std::memory_order_relaxed);
        total.messages_out += messages_out_.load(std::memory_order_relaxed);
        total.bytes_out += bytes_out_.load(std::memory_order_relaxed);
        total.messages_dropped += messages_dropped_.load(std::memory_order_relaxed);
        total.publishes += publishes_.load(std::memory_order_relaxed);
        total.rate_limited += rate_limited_.load(std::memory_order_relaxed);
        total.send_queue_bytes += queue_bytes_.load(std::memory_order_relaxed);
        for (std::size_t i = 0; i < queue_depth_.size(); ++i)
            total.send_queue_depth[i] += queue_depth_[i].load(std::memory_order_relaxed);
        for (std::size_t i = 0; i < exceptions_.size(); ++i)
            total.exceptions[i] += exceptions_[i].load(std::memory_order_relaxed);
    }

private:
    static constexpr std::size_t cause_count = static_cast<std::size_t>(close_cause::pong_timeout) + 1;
    // 1000-1015, 3000-3015 and 4000-4015 one by one; any other code in the last.
    static constexpr std::size_t codes_per_range = 16;
    static constexpr std::size_t code_slots = 3 * codes_per_range + 1;

    static constexpr std::size_t code_slot(std::uint16_t code) noexcept
    {
        for (std::size_t range = 0; range < 3; ++range) {
            auto const first = range == 0 ? 1000u : range == 1 ? 3000u : 4000u;
            if (code >= first && code < first + codes_per_range)
                return range * codes_per_range + (code - first);
        }
        return code_slots - 1;
    }
    static constexpr std::uint16_t code_of_slot(std::size_t slot) noexcept
    {
        if (slot == code_slots - 1)
            return 0;
        auto const range = slot / codes_per_range;
        auto const first = range == 0 ? 1000u : range == 1 ? 3000u : 4000u;
        return static_cast<std::uint16_t>(first + slot % codes_per_range);
    }

    static void add_close(route_metrics& total, std::uint16_t code, close_cause cause,
                          std::uint64_t n)
    {
        for (auto& c : total.closes)
            if (c.code == code && c.cause == cause) {
                c.count += n;
                return;
            }
        total.closes.push_back({code, cause, n});
    }

    // Single writer: a load and a store, not a locked read-modify-write.
    static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept
    {
        counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    std::atomic<std::uint64_t> connections_opened_{0};
    std::atomic<std::uint64_t> messages_in_{0};
    std::atomic<std::uint64_t> bytes_in_{0};
    std::atomic<std::uint64_t> messages_out_{0};
    std::atomic<std::uint64_t> bytes_out_{0};
    std::atomic<std::uint64_t> messages_dropped_{0};
    std::atomic<std::uint64_t> publishes_{0};
    std::atomic<std::uint64_t> rate_limited_{0};
    std::atomic<std::uint64_t> queue_bytes_{0};
    std::array<std::atomic<std::uint64_t>, send_queue_depth_bounds.size() + 1> queue_depth_{};
    std::array<std::atomic<std::uint64_t>, handler_callback_count> exceptions_{};
    std::array<std::array<std::atomic<std::uint64_t>, code_slots>, cause_count> closes_{};
};

/// The counts of one worker that belong to no route: upgrade refusals by
/// HTTP status (a 404 has no route). Written by the worker's thread only.
class http_counters {
public:
    void refused(unsigned status) noexcept
    {
        auto const slot = status >= 400 && status < 600 ? status - 400 : slots - 1;
        auto& counter = refusals_[slot];
        counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }

    /// Adds the refusals to `total`, by status (0: a status outside 400-599).
    void add_to(server_metrics& total) const
    {
        for (std::size_t i = 0; i < slots; ++i)
            if (auto const n = refusals_[i].load(std::memory_order_relaxed))
                total.upgrades_refused[i == slots - 1 ? 0 : static_cast<unsigned>(400 + i)] += n;
    }

private:
    static constexpr std::size_t slots = 201; // 400-599, and the rest
    std::array<std::atomic<std::uint64_t>, slots> refusals_{};
};

} // namespace mallard::detail

#endif
