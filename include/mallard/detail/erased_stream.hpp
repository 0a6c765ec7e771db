// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_ERASED_STREAM_HPP
#define MALLARD_DETAIL_ERASED_STREAM_HPP

// A stream layer that hands its next layer plain buffers and type-erased
// completion handlers only. Every Beast and mallard operation above reaches
// the next layer's own operations through the same two functions, so those
// are compiled once per direction, not once for each kind of operation above.
// mallard puts it over the TLS stream, whose operations (OpenSSL's engine
// loop around every read and write) made the TLS session's translation unit
// the slowest of the build. It costs an allocation per read and per write,
// next to the encryption of each; plain TCP connections do without it.

#include <mallard/detail/config.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <array>
#include <cstddef>
#include <utility>

namespace mallard::detail {

template <class NextLayer>
class erased_stream {
public:
    using next_layer_type = NextLayer;
    using executor_type = typename NextLayer::executor_type;

    explicit erased_stream(NextLayer next) : next_(std::move(next)) {}

    executor_type get_executor() noexcept { return next_.get_executor(); }
    NextLayer& next_layer() noexcept { return next_; }
    NextLayer const& next_layer() const noexcept { return next_; }

    /// Reads into the first non-empty buffer of `buffers` (a read_some may
    /// fill less than all of them).
    template <class MutableBuffers, class Token>
    auto async_read_some(MutableBuffers const& buffers, Token&& token)
    {
        return net::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, MutableBuffers const& b) {
                net::mutable_buffer first;
                for (auto it = net::buffer_sequence_begin(b); it != net::buffer_sequence_end(b);
                     ++it)
                    if (net::mutable_buffer one(*it); one.size() != 0) {
                        first = one;
                        break;
                    }
                read_some(first, erase(std::move(handler)));
            },
            token, buffers);
    }

    /// Writes from the first `max_buffers` buffers of `buffers` (a
    /// write_some may write less than all of them).
    template <class ConstBuffers, class Token>
    auto async_write_some(ConstBuffers const& buffers, Token&& token)
    {
        return net::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, ConstBuffers const& b) {
                buffer_list list;
                for (auto it = net::buffer_sequence_begin(b);
                     it != net::buffer_sequence_end(b) && list.count < max_buffers; ++it)
                    list.items[list.count++] = net::const_buffer(*it);
                write_some(list, erase(std::move(handler)));
            },
            token, buffers);
    }

    template <class TeardownHandler>
    friend void async_teardown(beast::role_type role, erased_stream& stream,
                               TeardownHandler&& handler)
    {
        stream.teardown_erased(
            role, net::bind_executor(stream.get_executor(),
                                     net::any_completion_handler<void(error_code)>(
                                         std::forward<TeardownHandler>(handler))));
    }

    friend void teardown(beast::role_type role, erased_stream& stream, error_code& ec)
    {
        using beast::websocket::teardown;
        teardown(role, stream.next_, ec);
    }

private:
    // The erased handler, bound to this stream's executor: Asio 1.26 cannot
    // post to the executor an erased handler brings (any_completion_executor
    // does not take blocking.never), and every connection's handlers run on
    // its one io_context anyway.
    using io_handler = net::executor_binder<
        net::any_completion_handler<void(error_code, std::size_t)>, executor_type>;

    template <class Handler>
    io_handler erase(Handler&& handler)
    {
        return net::bind_executor(
            get_executor(),
            net::any_completion_handler<void(error_code, std::size_t)>(
                std::forward<Handler>(handler)));
    }
    static constexpr std::size_t max_buffers = 8;

    // A buffer sequence of up to max_buffers buffers, copied by value.
    struct buffer_list {
        std::array<net::const_buffer, max_buffers> items{};
        std::size_t count = 0;
        net::const_buffer const* begin() const noexcept { return items.data(); }
        net::const_buffer const* end() const noexcept { return items.data() + count; }
    };

    // The only places the next layer's operations are instantiated.
    void read_some(net::mutable_buffer buffer, io_handler handler)
    {
        next_.async_read_some(buffer, std::move(handler));
    }

    void write_some(buffer_list buffers, io_handler handler)
    {
        next_.async_write_some(buffers, std::move(handler));
    }

    void teardown_erased(
        beast::role_type role,
        net::executor_binder<net::any_completion_handler<void(error_code)>, executor_type> h)
    {
        using beast::websocket::async_teardown;
        async_teardown(role, next_, std::move(h));
    }

    NextLayer next_;
};

} // namespace mallard::detail

#endif
