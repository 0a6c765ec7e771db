// SPDX-License-Identifier: BSL-1.0
// A connection's message buffer, held only while a message is read or
// handled (detail/pooled_buffer.hpp).

#include <mallard/detail/pooled_buffer.hpp>

#include <boost/asio/buffer.hpp>

#include <catch2/catch.hpp>

#include <cstring>
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

TEST_CASE("A pooled buffer holds nothing until its first prepare, and gives its storage back "
          "on release", "[buffers]")
{
    buffer_pool pool;
    pooled_buffer b(pool);
    CHECK(b.capacity() == 0);
    append(b, "hello");
    CHECK(b.size() == 5);
    CHECK(std::string_view(static_cast<char const*>(b.data().data()), b.size()) == "hello");
    auto const storage = b.data().data();
    b.release();
    CHECK(b.capacity() == 0);
    CHECK(b.size() == 0);
    CHECK(pool.spare() == 1);

    // The next message, on this connection or another, reuses that storage.
    pooled_buffer other(pool);
    append(other, "again");
    CHECK(other.data().data() == storage);
    CHECK(pool.spare() == 0);
    CHECK(std::string_view(static_cast<char const*>(other.data().data()), other.size()) == "again");
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
