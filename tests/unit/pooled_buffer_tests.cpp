// SPDX-License-Identifier: BSL-1.0
// A connection's message buffer, held only while a message is read or
// handled (detail/pooled_buffer.hpp).

#include <mallard/detail/pooled_buffer.hpp>

#include <boost/asio/buffer.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <string_view>

using mallard::detail::buffer_pool;
using mallard::detail::pooled_buffer;

namespace {

void append(pooled_buffer& b, std::string_view bytes)
{
    auto room = b.prepare(bytes.size());
    std::memcpy(room.data(), bytes.data(), bytes.size());
    b.commit(bytes.size());
}

} // namespace

TEST_CASE("A small message stays in the pooled buffer's own array, and an empty buffer "
          "offers Beast no more room than that", "[buffers]")
{
    buffer_pool pool;
    pooled_buffer b(pool);
    // Beast's size hint is the room max_size() leaves: the array's, while
    // empty, so the read waiting for the peer holds no heap block.
    CHECK(b.max_size() == pooled_buffer::inline_bytes);
    append(b, "hello");
    CHECK(b.size() == 5);
    CHECK(std::string_view(static_cast<char const*>(b.data().data()), b.size()) == "hello");
    CHECK(b.max_size() > pooled_buffer::inline_bytes); // a message under way may grow
    b.release();
    CHECK(b.size() == 0);
    CHECK(pool.spare() == 0); // nothing was taken from the pool
}

TEST_CASE("A larger message moves to a buffer from the pool, keeping what was read, and "
          "gives it back on release", "[buffers]")
{
    buffer_pool pool;
    pooled_buffer b(pool);
    std::string const head(100, 'h');
    std::string const tail(1000, 't');
    append(b, head);
    append(b, tail); // past the array: moves to a heap buffer
    REQUIRE(b.size() == head.size() + tail.size());
    CHECK(std::string_view(static_cast<char const*>(b.data().data()), b.size()) == head + tail);
    auto const storage = b.data().data();
    b.release();
    CHECK(pool.spare() == 1);

    // The next large message, on this connection or another, reuses that storage.
    pooled_buffer other(pool);
    append(other, std::string(500, 'x'));
    CHECK(other.data().data() == storage);
    CHECK(pool.spare() == 0);
    other.consume(100);
    CHECK(other.size() == 400);
}

TEST_CASE("The buffer pool keeps neither buffers grown large nor more than its count",
          "[buffers]")
{
    buffer_pool pool;
    {
        pooled_buffer big(pool);
        big.prepare(buffer_pool::max_buffer_bytes + 1);
        big.release();
        CHECK(pool.spare() == 0); // freed: one large message must not pin its memory
    }
    for (std::size_t i = 0; i < buffer_pool::max_buffers + 5; ++i) {
        boost::beast::flat_buffer b;
        b.prepare(100);
        pool.give_back(std::move(b));
    }
    CHECK(pool.spare() == buffer_pool::max_buffers);
    pooled_buffer never_prepared(pool);
    never_prepared.release(); // nothing to give back
    CHECK(pool.spare() == buffer_pool::max_buffers);
}
