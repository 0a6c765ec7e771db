// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_POOLED_BUFFER_HPP
#define MALLARD_DETAIL_POOLED_BUFFER_HPP

// A connection's message buffer, held only while a message is being read
// or handled. Between messages its storage goes back to its worker's pool,
// so an idle connection holds none; the next message's first payload byte
// takes a buffer from the pool again (no allocation in steady state: the
// pool hands back what the last message returned). One thread: each worker
// has its own pool.

#include <mallard/detail/config.hpp>

#include <boost/beast/core/flat_buffer.hpp>

#include <cstddef>
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

/// A DynamicBuffer (Asio's v1 concept, as Beast's reads take it) over a
/// flat_buffer taken from `pool` at the first prepare() and given back by
/// release(). Its data is contiguous, like flat_buffer's.
class pooled_buffer {
public:
    using const_buffers_type = beast::flat_buffer::const_buffers_type;
    using mutable_buffers_type = beast::flat_buffer::mutable_buffers_type;

    explicit pooled_buffer(buffer_pool& pool) noexcept : pool_(&pool) {}

    pooled_buffer(pooled_buffer const&) = delete;
    pooled_buffer& operator=(pooled_buffer const&) = delete;

    std::size_t size() const noexcept { return buffer_.size(); }
    std::size_t max_size() const noexcept { return buffer_.max_size(); }
    std::size_t capacity() const noexcept { return buffer_.capacity(); }
    const_buffers_type data() const noexcept { return buffer_.data(); }
    mutable_buffers_type data() noexcept { return buffer_.data(); }
    const_buffers_type cdata() const noexcept { return buffer_.cdata(); }

    mutable_buffers_type prepare(std::size_t n)
    {
        if (buffer_.capacity() == 0)
            buffer_ = pool_->take();
        return buffer_.prepare(n);
    }

    void commit(std::size_t n) noexcept { buffer_.commit(n); }
    void consume(std::size_t n) noexcept { buffer_.consume(n); }

    /// Drops the data and gives the storage back to the pool.
    void release()
    {
        if (buffer_.capacity() != 0)
            pool_->give_back(std::exchange(buffer_, beast::flat_buffer{}));
    }

private:
    buffer_pool* pool_;
    beast::flat_buffer buffer_;
};

} // namespace mallard::detail

#endif
