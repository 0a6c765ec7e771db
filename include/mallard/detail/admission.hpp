// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_ADMISSION_HPP
#define MALLARD_DETAIL_ADMISSION_HPP

// The server's admission limits: how many WebSocket connections it holds in
// all (server_options::max_connections) and per client address
// (max_connections_per_address; an IPv6 client counts by its /64, which one
// host usually holds whole). An upgrade takes a ticket before any view is
// made; the connection gives it back when it ends. Tickets are taken and
// given back from every server thread, once per connection, never per
// message: a mutex is fine here.

#include <mallard/detail/http/client_address.hpp>

#include <boost/asio/ip/address.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace mallard::detail {

/// The part of an address that per-address limits count by: the whole IPv4
/// address, the first 64 bits of an IPv6 one.
inline std::array<unsigned char, 16> address_key(net::ip::address const& raw)
{
    auto const address = plain_address(raw);
    std::array<unsigned char, 16> key{};
    if (address.is_v4()) {
        auto const bytes = address.to_v4().to_bytes();
        std::copy(bytes.begin(), bytes.end(), key.begin());
        key[15] = 4; // not the same key as an IPv6 address starting alike
    } else {
        auto const bytes = address.to_v6().to_bytes();
        std::copy(bytes.begin(), bytes.begin() + 8, key.begin());
        key[15] = 6;
    }
    return key;
}

class admission {
public:
    /// Why an upgrade was not admitted.
    enum class refusal { none, server_full, address_full };

    /// 0 for either limit: none.
    admission(std::size_t max_total, std::size_t max_per_address)
        : max_total_(max_total), max_per_address_(max_per_address)
    {
    }

    /// A connection's place; given back when destroyed or released.
    class ticket {
    public:
        ticket() = default;
        ticket(ticket&& other) noexcept
            : owner_(std::exchange(other.owner_, nullptr)), key_(other.key_)
        {
        }
        ticket& operator=(ticket&& other) noexcept
        {
            if (this != &other) {
                release();
                owner_ = std::exchange(other.owner_, nullptr);
                key_ = other.key_;
            }
            return *this;
        }
        ~ticket() { release(); }

        void release() noexcept
        {
            if (auto* owner = std::exchange(owner_, nullptr))
                owner->give_back(key_);
        }

    private:
        friend class admission;
        ticket(admission* owner, std::array<unsigned char, 16> key) : owner_(owner), key_(key) {}
        admission* owner_ = nullptr;
        std::array<unsigned char, 16> key_{};
    };

    /// Takes a place for a connection from `client`, or says which limit
    /// is full.
    std::pair<ticket, refusal> admit(net::ip::address const& client)
    {
        if (max_total_ == 0 && max_per_address_ == 0)
            return {ticket{}, refusal::none};
        auto const key = address_key(client);
        std::lock_guard lock(mutex_);
        if (max_total_ != 0 && total_ >= max_total_) {
            refused_server_.fetch_add(1, std::memory_order_relaxed);
            return {ticket{}, refusal::server_full};
        }
        auto& count = per_address_[key];
        if (max_per_address_ != 0 && count >= max_per_address_) {
            if (count == 0)
                per_address_.erase(key);
            refused_address_.fetch_add(1, std::memory_order_relaxed);
            return {ticket{}, refusal::address_full};
        }
        ++count;
        ++total_;
        return {ticket{this, key}, refusal::none};
    }

    /// Upgrades refused for each limit; any thread.
    std::uint64_t refused_server_full() const noexcept
    {
        return refused_server_.load(std::memory_order_relaxed);
    }
    std::uint64_t refused_address_full() const noexcept
    {
        return refused_address_.load(std::memory_order_relaxed);
    }

private:
    struct key_hash {
        std::size_t operator()(std::array<unsigned char, 16> const& key) const noexcept
        {
            std::uint64_t a = 0, b = 0;
            for (std::size_t i = 0; i < 8; ++i) {
                a = a << 8 | key[i];
                b = b << 8 | key[8 + i];
            }
            return std::hash<std::uint64_t>{}(a * 0x9e3779b97f4a7c15ull ^ b);
        }
    };

    void give_back(std::array<unsigned char, 16> const& key) noexcept
    {
        std::lock_guard lock(mutex_);
        --total_;
        auto const found = per_address_.find(key);
        if (found != per_address_.end() && --found->second == 0)
            per_address_.erase(found);
    }

    std::size_t const max_total_;
    std::size_t const max_per_address_;
    std::mutex mutex_;
    std::size_t total_ = 0;
    std::unordered_map<std::array<unsigned char, 16>, std::size_t, key_hash> per_address_;
    std::atomic<std::uint64_t> refused_server_{0};
    std::atomic<std::uint64_t> refused_address_{0};
};

} // namespace mallard::detail

#endif
