// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_STATS_COUNTERS_HPP
#define MALLARD_DETAIL_STATS_COUNTERS_HPP

// One worker's counters. Written only by the worker's own thread (relaxed
// atomics, so no cache line is shared between threads on the hot path), read
// by anyone through server::stats().

#include <mallard/server_stats.hpp>

#include <array>
#include <atomic>
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
    void closed(std::uint16_t code) noexcept
    {
        if (code >= 1000 && code < 1000 + close_slots)
            add(closes_[code - 1000], 1);
        else
            add(other_codes_, 1);
    }

    /// Adds this worker's counts to `total`.
    void add_to(server_stats& total) const noexcept
    {
        total.connections_opened += connections_opened_.load(std::memory_order_relaxed);
        total.messages_in += messages_in_.load(std::memory_order_relaxed);
        total.bytes_in += bytes_in_.load(std::memory_order_relaxed);
        total.messages_out += messages_out_.load(std::memory_order_relaxed);
        total.bytes_out += bytes_out_.load(std::memory_order_relaxed);
        total.messages_dropped += messages_dropped_.load(std::memory_order_relaxed);
        for (std::size_t i = 0; i < close_slots; ++i)
            if (auto n = closes_[i].load(std::memory_order_relaxed))
                total.closes_by_code[static_cast<std::uint16_t>(1000 + i)] += n;
        // Application codes (3000-4999) are counted together, under 0.
        if (auto n = other_codes_.load(std::memory_order_relaxed))
            total.closes_by_code[0] += n;
    }

private:
    static constexpr std::size_t close_slots = 16; // 1000-1015; the rest in other_codes_

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
    std::array<std::atomic<std::uint64_t>, close_slots> closes_{};
    std::atomic<std::uint64_t> other_codes_{0};
};

} // namespace mallard::detail

#endif
