// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_POOLED_BUFFER_HPP
#define MALLARD_DETAIL_POOLED_BUFFER_HPP

// A connection's message buffer. Small messages live in an array inside the
// connection; a larger one takes a buffer from its worker's pool and gives
// it back once handled, so an idle connection holds no heap block for its
// next message, and in steady state nothing is allocated (the pool hands
// back what the last large message returned). One thread: each worker has
// its own pool.

#include <mallard/detail/config.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

namespace mallard::detail {

/// Spare message buffers of one worker, bounded in count and in the size of
/// each, so that a burst of large messages does not stay pinned here.
class buffer_pool {
public:
    /// Buffers kept: enough for the handlers of one thread that await
    /// while holding their message; more are freed.
    static constexpr std::size_t max_buffers = 64;
    /// A buffer grown past this by one large message is freed, not kept.
    static constexpr std::size_t max_buffer_bytes = 64 * 1024;

    buffer_pool() { spare_.reserve(max_buffers); }

    buffer_pool(buffer_pool const&) = delete;
    buffer_pool& operator=(buffer_pool const&) = delete;

    /// A spare buffer (empty, with capacity), or an empty one without.
    beast::flat_buffer take()
    {
        if (spare_.empty())
            return beast::flat_buffer{};
        auto b = std::move(spare_.back());
        spare_.pop_back();
        return b;
    }

    /// Keeps `b`'s storage for the next taker, if it is worth keeping.
    void give_back(beast::flat_buffer&& b)
    {
        if (b.capacity() == 0 || b.capacity() > max_buffer_bytes || spare_.size() == max_buffers)
            return; // freed with b
        b.clear();
        spare_.push_back(std::move(b));
    }

    std::size_t spare() const noexcept { return spare_.size(); }

private:
    std::vector<beast::flat_buffer> spare_;
};

/// A DynamicBuffer (Asio's v1 concept, as Beast's reads take it) whose
/// storage is an inline array of `inline_bytes` until a message needs more,
/// then a flat_buffer taken from `pool` and given back by release(). Its
/// data is contiguous, like flat_buffer's.
///
/// Beast prepares the buffer before its read waits for the peer (its size
/// hint is the room the buffer says it has, at most 1,536 bytes): while
/// empty and without storage, max_size() says inline_bytes, so an idle
/// connection's prepared buffer is the inline array, not a heap block. A
/// larger message then asks again and gets the pool's buffer; max_size()
/// is otherwise that of a flat_buffer (Beast bounds messages by
/// read_message_max, not by this).
class pooled_buffer {
public:
    using const_buffers_type = net::const_buffer;
    using mutable_buffers_type = net::mutable_buffer;

    /// Messages up to this size never leave the inline array.
    static constexpr std::size_t inline_bytes = 128;

    explicit pooled_buffer(buffer_pool& pool) noexcept : pool_(&pool) {}

    pooled_buffer(pooled_buffer const&) = delete;
    pooled_buffer& operator=(pooled_buffer const&) = delete;

    std::size_t size() const noexcept { return pooled() ? buffer_.size() : inline_size_; }

    std::size_t max_size() const noexcept
    {
        if (!pooled() && inline_size_ == 0)
            return inline_bytes; // see above: Beast prepares no more than this
        return buffer_.max_size();
    }

    std::size_t capacity() const noexcept { return pooled() ? buffer_.capacity() : inline_bytes; }

    const_buffers_type data() const noexcept
    {
        if (pooled())
            return buffer_.data();
        return {inline_.data(), inline_size_};
    }
    const_buffers_type cdata() const noexcept { return data(); }
    mutable_buffers_type data() noexcept
    {
        if (pooled())
            return buffer_.data();
        return {inline_.data(), inline_size_};
    }

    mutable_buffers_type prepare(std::size_t n)
    {
        if (!pooled()) {
            if (inline_size_ + n <= inline_bytes) {
                inline_prepared_ = n;
                return {inline_.data() + inline_size_, n};
            }
            // Too large for the array: move to a pooled buffer.
            buffer_ = pool_->take();
            auto room = buffer_.prepare(inline_size_ + n);
            std::memcpy(room.data(), inline_.data(), inline_size_);
            buffer_.commit(inline_size_);
            inline_size_ = inline_prepared_ = 0;
        }
        return buffer_.prepare(n);
    }

    void commit(std::size_t n) noexcept
    {
        if (pooled())
            return buffer_.commit(n);
        inline_size_ += std::min(n, inline_prepared_);
        inline_prepared_ = 0;
    }

    void consume(std::size_t n) noexcept
    {
        if (pooled())
            return buffer_.consume(n);
        n = std::min(n, inline_size_);
        std::memmove(inline_.data(), inline_.data() + n, inline_size_ - n);
        inline_size_ -= n;
    }

    /// Drops the data and gives the storage back to the pool.
    void release()
    {
        inline_size_ = inline_prepared_ = 0;
        if (pooled())
            pool_->give_back(std::exchange(buffer_, beast::flat_buffer{}));
    }

private:
    bool pooled() const noexcept { return buffer_.capacity() != 0; }

    buffer_pool* pool_;
    beast::flat_buffer buffer_;
    std::size_t inline_size_ = 0;
    std::size_t inline_prepared_ = 0;
    std::array<char, inline_bytes> inline_;
};

} // namespace mallard::detail

#endif
