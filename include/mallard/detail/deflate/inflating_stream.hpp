// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_DEFLATE_INFLATING_STREAM_HPP
#define MALLARD_DETAIL_DEFLATE_INFLATING_STREAM_HPP

// The layer beneath a session's websocket::stream, above TCP or TLS. Off, as
// it starts, it passes reads and writes straight through, at no cost. Once
// the session turns it on (permessage-deflate agreed), what Beast reads
// comes through a frame_inflater: compressed messages arrive inflated, by
// the system zlib instead of Beast's port, which stops at a DEFLATE block
// with BFINAL set (see frame_inflater.hpp). Writes always pass through:
// Beast still compresses what we send.
//
// It also hands Beast the bytes the HTTP parser read past the upgrade request
// (a client may send its first frames right behind it): reads return those
// before anything from the next layer.
//
// Beast finds the teardown below by argument-dependent lookup; it forwards
// to the next layer's own (detail::tcp_stream's, or Beast's for TLS).

#include <mallard/detail/config.hpp>
#include <mallard/detail/deflate/frame_inflater.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

namespace mallard::detail {

template <class NextLayer>
class inflating_stream {
public:
    using next_layer_type = NextLayer;
    using executor_type = typename NextLayer::executor_type;

    explicit inflating_stream(NextLayer next) : next_(std::move(next)) {}

    executor_type get_executor() noexcept { return next_.get_executor(); }
    NextLayer& next_layer() noexcept { return next_; }
    NextLayer const& next_layer() const noexcept { return next_; }

    /// From the next read on, inflates the client's compressed messages.
    /// Call once, after the 101 that agreed to permessage-deflate, before
    /// Beast reads a frame.
    void inflate_messages() { inflater_ = std::make_unique<frame_inflater>(); }

    /// Bytes already read from the next layer (past the upgrade request),
    /// to be read again before anything new. Call before the first read.
    void unread(std::string bytes)
    {
        already_read_ = std::move(bytes);
        already_read_at_ = 0;
    }

    template <class MutableBufferSequence, class ReadHandler>
    auto async_read_some(MutableBufferSequence const& buffers, ReadHandler&& handler)
    {
        return net::async_initiate<ReadHandler, void(error_code, std::size_t)>(
            initiate_read{this}, handler, buffers);
    }

    template <class ConstBufferSequence, class WriteHandler>
    auto async_write_some(ConstBufferSequence const& buffers, WriteHandler&& handler)
    {
        return next_.async_write_some(buffers, std::forward<WriteHandler>(handler));
    }

    /// Writes what the socket takes at once, never waiting (would_block when
    /// it takes nothing). Only over plain TCP: a TLS stream encrypts first.
    template <class ConstBufferSequence>
    std::size_t try_write_some(ConstBufferSequence const& buffers, error_code& ec)
        requires requires(NextLayer& next) { next.socket().non_blocking(true, ec); }
    {
        auto& socket = next_.socket();
        if (!socket.non_blocking()) {
            // Our asynchronous operations never look at this: only the
            // synchronous send below, which must not block.
            socket.non_blocking(true, ec);
            if (ec)
                return 0;
        }
        return socket.send(buffers, 0, ec);
    }

    template <class TeardownHandler>
    friend void async_teardown(beast::role_type role, inflating_stream& stream,
                               TeardownHandler&& handler)
    {
        using beast::websocket::async_teardown;
        async_teardown(role, stream.next_, std::forward<TeardownHandler>(handler));
    }

    friend void teardown(beast::role_type role, inflating_stream& stream, error_code& ec)
    {
        using beast::websocket::teardown;
        teardown(role, stream.next_, ec);
    }

private:
    // Nothing of ours left for Beast: read straight from the next layer.
    bool passing_through() const noexcept
    {
        return !has_already_read() &&
               (!inflater_ || (inflater_->stopped() && !inflater_->error() &&
                               inflater_->output().size() == 0 && !read_error_));
    }

    bool has_already_read() const noexcept { return already_read_at_ < already_read_.size(); }

    // Reads from the next layer into `into`, or from the bytes already read
    // while there are any (completing through the executor, as a read would).
    template <class Buffers, class Self>
    void read_next(Buffers const& into, Self&& self)
    {
        if (!has_already_read())
            return next_.async_read_some(into, std::forward<Self>(self));
        auto const copied = net::buffer_copy(
            into, net::buffer(already_read_.data() + already_read_at_,
                              already_read_.size() - already_read_at_));
        already_read_at_ += copied;
        if (!has_already_read())
            std::string().swap(already_read_);
        net::post(net::append(std::forward<Self>(self), error_code{}, copied));
    }

    struct initiate_read {
        inflating_stream* stream;

        template <class Handler, class Buffers>
        void operator()(Handler&& handler, Buffers const& buffers) const
        {
            if (stream->passing_through())
                stream->next_.async_read_some(buffers, std::forward<Handler>(handler));
            else
                net::async_compose<Handler, void(error_code, std::size_t)>(
                    read_op<Buffers>{*stream, buffers}, handler, stream->next_);
        }
    };

    // Reads from the next layer into the inflater until it has something
    // for Beast (frames, or the error to fail the read with), then copies
    // that into Beast's buffers. Without an inflater it only hands Beast the
    // bytes already read.
    template <class Buffers>
    struct read_op {
        inflating_stream& stream;
        Buffers buffers;
        enum class state { starting, posted, reading_input, reading_through } at = state::starting;

        template <class Self>
        void operator()(Self& self, error_code ec = {}, std::size_t size = 0)
        {
            if (at == state::reading_through)
                return self.complete(ec, size);
            if (!stream.inflater_) {
                at = state::reading_through;
                return stream.read_next(buffers, std::move(self));
            }
            auto& inflater = *stream.inflater_;
            if (at == state::reading_input) {
                inflater.commit_input(size);
                stream.read_error_ = ec; // delivered after the frames read with it
            }
            inflater.process();
            auto const out = inflater.output();
            bool const ready = out.size() > 0 || inflater.error() || stream.read_error_ ||
                               net::buffer_size(buffers) == 0;
            if (!ready) {
                if (inflater.stopped()) { // the rest goes to Beast untouched
                    at = state::reading_through;
                    return stream.read_next(buffers, std::move(self));
                }
                at = state::reading_input;
                return stream.read_next(inflater.input_space(), std::move(self));
            }
            if (at == state::starting) { // never complete inside the initiating call
                at = state::posted;
                return net::post(std::move(self));
            }
            if (out.size() > 0) {
                auto const copied = net::buffer_copy(buffers, out);
                inflater.consume_output(copied);
                return self.complete(error_code{}, copied);
            }
            if (auto const failed = inflater.error())
                return self.complete(failed, 0);
            return self.complete(std::exchange(stream.read_error_, {}), 0);
        }
    };

    NextLayer next_;
    std::unique_ptr<frame_inflater> inflater_; // null while off
    error_code read_error_;                    // the next layer's, not yet delivered
    std::string already_read_;                 // see unread()
    std::size_t already_read_at_ = 0;
};

} // namespace mallard::detail

#endif
