// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_DEFLATE_FRAME_INFLATER_HPP
#define MALLARD_DETAIL_DEFLATE_FRAME_INFLATER_HPP

// Inflates the compressed messages (RFC 7692) in the byte stream a client
// sends, before Beast reads it. Sans I/O: raw bytes in, frames for Beast out;
// detail::inflating_stream does the reading.
//
// Why not let Beast inflate: Beast 1.81 inflates with its own port of zlib,
// which reports the end of a DEFLATE block with BFINAL set as an error and
// cannot go on from there with its window kept. RFC 7692 section 7.2.3.4
// allows such a block, and later messages may still refer back into it. The
// system zlib can do both, so with permessage-deflate agreed:
//
//   - a message whose first frame has RSV1 is unmasked and inflated here and
//     reaches Beast as an uncompressed message: RSV1 clear, the original
//     opcode on the first frame, continuations after, FIN on the last (an
//     empty one), masked with a zero key so the payload needs no masking
//     again. Control frames between its fragments pass between the frames
//     made from them, which is legal in a fragmented message;
//   - every other frame (control frames, messages without RSV1) passes
//     byte for byte, so that Beast checks it as before;
//   - a frame Beast must reject (RSV2 or RSV3, RSV1 where RFC 7692 forbids
//     it, unmasked, a reserved opcode, a length not minimally encoded, a
//     fragment out of sequence) passes too, with everything after it: the
//     inflater stops parsing and Beast fails the connection with the right
//     close code.
//
// Memory stays bounded whatever the peer sends: at most `buffer_bytes` of
// frames wait for Beast, and inflating pauses until Beast has read them. A
// small frame that inflates to gigabytes reaches Beast in pieces, and
// Beast's read_message_max closes the connection with 1009 on the way.

#include <mallard/detail/config.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/system/error_category.hpp>

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

namespace mallard::detail {

/// How a compressed message can fail.
enum class inflate_error {
    bad_data = 1, ///< the compressed data does not inflate (or zlib ran out of memory)
};

inline boost::system::error_category const& inflate_category() noexcept
{
    struct category final : boost::system::error_category {
        char const* name() const noexcept override { return "mallard.inflate"; }
        std::string message(int) const override
        {
            return "compressed message does not inflate";
        }
    };
    static category const instance;
    return instance;
}

inline error_code make_error_code(inflate_error e) noexcept
{
    return {static_cast<int>(e), inflate_category()};
}

} // namespace mallard::detail

template <>
struct boost::system::is_error_code_enum<mallard::detail::inflate_error> : std::true_type {};

namespace mallard::detail {

class frame_inflater {
public:
    /// The size of the input buffer, and the most frame bytes waiting for Beast.
    static constexpr std::size_t buffer_bytes = 16 * 1024;

    frame_inflater() : in_(new unsigned char[buffer_bytes]), out_(new unsigned char[buffer_bytes])
    {
        // A 15-bit raw inflater reads data compressed with any smaller window
        // too, so client_max_window_bits needs nothing more here.
        if (inflateInit2(&z_, -15) != Z_OK)
            throw std::bad_alloc();
    }

    ~frame_inflater() { inflateEnd(&z_); }

    // zlib's state points back at z_, so the inflater never moves.
    frame_inflater(frame_inflater const&) = delete;
    frame_inflater& operator=(frame_inflater const&) = delete;

    /// Where to read the client's next bytes. Never empty while `output()` is.
    net::mutable_buffer input_space()
    {
        // What is left is at most an incomplete frame header, or payload
        // waiting for output room: little to move.
        std::memmove(in_.get(), in_.get() + in_begin_, in_end_ - in_begin_);
        in_end_ -= in_begin_;
        in_begin_ = 0;
        return {in_.get() + in_end_, buffer_bytes - in_end_};
    }

    /// Adds `size` bytes, read into `input_space()`.
    void commit_input(std::size_t size) { in_end_ += size; }

    /// Parses and inflates as far as the input and the output room allow.
    void process()
    {
        while (step_once()) {
        }
    }

    /// Bytes for Beast: the frames made so far, then, once parsing stopped,
    /// the input not parsed (unless the data did not inflate).
    net::const_buffer output() const noexcept
    {
        if (out_begin_ != out_end_)
            return {out_.get() + out_begin_, out_end_ - out_begin_};
        if (step_ == step::stopped && !error_)
            return {in_.get() + in_begin_, in_end_ - in_begin_};
        return {};
    }

    /// Removes the first `size` bytes of `output()`.
    void consume_output(std::size_t size) noexcept
    {
        if (out_begin_ == out_end_) {
            in_begin_ += size;
            return;
        }
        out_begin_ += size;
        if (out_begin_ == out_end_)
            out_begin_ = out_end_ = 0;
    }

    /// Parsing has stopped: once `output()` is empty, the client's bytes go
    /// to Beast untouched (or, after `error()`, nowhere).
    bool stopped() const noexcept { return step_ == step::stopped; }

    /// Set when a compressed message did not inflate; parsing has stopped.
    error_code error() const noexcept { return error_; }

private:
    enum class step {
        header,  // reading a frame header
        copy,    // passing a frame on unchanged, header and payload
        inflate, // unmasking and inflating a compressed frame's payload
        finish,  // ending a compressed message
        stopped, // the rest of the input is not ours to parse
    };
    enum class message { none, plain, compressed };

    struct inflate_result {
        std::size_t consumed;
        std::size_t produced;
        bool output_full; // zlib may hold more output: call again
    };

    // The largest header we write: a 16-bit length and a masking key.
    static constexpr std::size_t max_header = 8;
    static constexpr std::size_t fin_frame = 6;
    // Output room below which inflating waits for Beast to read: no tiny frames.
    static constexpr std::size_t min_chunk = 256;
    static_assert(buffer_bytes < 65536, "an inflated chunk must fit a 16-bit length");

    bool step_once()
    {
        switch (step_) {
        case step::header:
            return read_header();
        case step::copy:
            return copy_frame();
        case step::inflate:
            return inflate_payload();
        case step::finish:
            return finish_message();
        case step::stopped:
            break;
        }
        return false;
    }

    bool read_header()
    {
        auto const available = in_end_ - in_begin_;
        if (available < 2)
            return false;
        unsigned char const* p = in_.get() + in_begin_;
        bool const fin = (p[0] & 0x80) != 0;
        bool const rsv1 = (p[0] & 0x40) != 0;
        bool const rsv23 = (p[0] & 0x30) != 0;
        unsigned const op = p[0] & 0x0f;
        bool const masked = (p[1] & 0x80) != 0;
        unsigned const length7 = p[1] & 0x7f;
        std::size_t const header =
            2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) + (masked ? 4 : 0);
        if (available < header)
            return false;
        std::uint64_t length = length7;
        bool canonical = true;
        if (length7 == 126) {
            length = std::uint64_t{p[2]} << 8 | p[3];
            canonical = length >= 126;
        } else if (length7 == 127) {
            length = 0;
            for (int i = 2; i < 10; ++i)
                length = length << 8 | p[i];
            canonical = length >= 65536 && (length >> 63) == 0;
        }
        bool const control = op >= 8;
        bool const first = op == 1 || op == 2;
        bool const valid = !rsv23 && masked && canonical &&
                           (control ? op <= 10 && fin && length7 <= 125 && !rsv1
                            : first ? message_ == message::none
                            : op == 0 && message_ != message::none && !rsv1);
        if (!valid) {
            step_ = step::stopped; // Beast rejects it, with the right code
            return false;
        }
        if (control || (!rsv1 && message_ != message::compressed)) {
            if (!control)
                message_ = fin ? message::none : message::plain;
            remaining_ = header + length;
            step_ = step::copy;
            return true;
        }
        if (first) { // RSV1: a compressed message begins
            message_ = message::compressed;
            opcode_ = static_cast<unsigned char>(op);
            started_ = false;
            ended_ = false;
            trailer_at_ = 0;
        }
        final_ = fin;
        std::memcpy(key_.data(), p + header - 4, 4);
        key_at_ = 0;
        unmasked_ = 0;
        remaining_ = length;
        in_begin_ += header;
        step_ = step::inflate;
        return true;
    }

    bool copy_frame()
    {
        if (remaining_ == 0) {
            step_ = step::header;
            return true;
        }
        auto const size = static_cast<std::size_t>(std::min<std::uint64_t>(
            remaining_, std::min(in_end_ - in_begin_, buffer_bytes - out_end_)));
        if (size == 0)
            return false;
        std::memcpy(out_.get() + out_end_, in_.get() + in_begin_, size);
        in_begin_ += size;
        out_end_ += size;
        remaining_ -= size;
        return true;
    }

    bool inflate_payload()
    {
        if (remaining_ == 0) {
            step_ = final_ ? step::finish : step::header;
            return true;
        }
        auto const available =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in_end_ - in_begin_));
        if (available == 0)
            return false;
        if (ended_) { // after BFINAL the rest of the message means nothing
            in_begin_ += available;
            remaining_ -= available;
            unmasked_ = 0;
            return true;
        }
        if (!has_chunk_room())
            return false;
        // Unmasked in place, once: inflate may take only part of it.
        unsigned char* payload = in_.get() + in_begin_;
        for (; unmasked_ < available; ++unmasked_)
            payload[unmasked_] ^= key_[key_at_++ & 3];
        auto const result = inflate_chunk(payload, available);
        in_begin_ += result.consumed;
        remaining_ -= result.consumed;
        unmasked_ -= result.consumed;
        return !stopped() && (result.consumed > 0 || result.produced > 0 || ended_);
    }

    // RFC 7692 section 7.2.2: the sender removed 00 00 ff ff from the end
    // of the message; inflating them also flushes what zlib still holds.
    // Then an empty frame with FIN ends the message for Beast.
    bool finish_message()
    {
        static constexpr unsigned char trailer[] = {0x00, 0x00, 0xff, 0xff};
        if (!ended_) {
            if (!has_chunk_room())
                return false;
            auto const result = inflate_chunk(trailer + trailer_at_, 4 - trailer_at_);
            trailer_at_ += result.consumed;
            if (stopped())
                return false;
            if (!ended_ && result.output_full)
                return true; // again, once there is room
        }
        if (buffer_bytes - out_end_ < fin_frame)
            return false;
        unsigned char* frame = out_.get() + out_end_;
        frame[0] = static_cast<unsigned char>(0x80 | (started_ ? 0x00 : opcode_));
        frame[1] = 0x80; // masked, empty
        std::memset(frame + 2, 0, 4);
        out_end_ += fin_frame;
        message_ = message::none;
        step_ = step::header;
        return true;
    }

    bool has_chunk_room() const noexcept { return buffer_bytes - out_end_ >= max_header + min_chunk; }

    // Inflates into the output as one frame; the caller checked the room.
    inflate_result inflate_chunk(unsigned char const* data, std::size_t size)
    {
        unsigned char* const chunk = out_.get() + out_end_ + max_header;
        auto const room = buffer_bytes - out_end_ - max_header;
        z_.next_in = const_cast<unsigned char*>(data); // zlib does not write through it
        z_.avail_in = static_cast<uInt>(size);
        z_.next_out = chunk;
        z_.avail_out = static_cast<uInt>(room);
        int const status = inflate(&z_, Z_SYNC_FLUSH);
        inflate_result const result{size - z_.avail_in, room - z_.avail_out, z_.avail_out == 0};
        if (result.produced > 0)
            emit_frame(result.produced);
        if (status == Z_STREAM_END)
            keep_window_after_end();
        else if (status != Z_OK && status != Z_BUF_ERROR) // Z_BUF_ERROR: nothing to do
            fail();
        return result;
    }

    // The inflated bytes are at out_end_ + max_header; the header goes in
    // front of them, which a payload under 126 bytes moves up to meet.
    void emit_frame(std::size_t size)
    {
        unsigned char* frame = out_.get() + out_end_;
        std::size_t header = max_header;
        frame[0] = started_ ? 0x00 : opcode_; // no FIN: the message ends with an empty frame
        if (size < 126) {
            header = 6;
            std::memmove(frame + header, frame + max_header, size);
            frame[1] = static_cast<unsigned char>(0x80 | size);
        } else {
            frame[1] = 0x80 | 126;
            frame[2] = static_cast<unsigned char>(size >> 8);
            frame[3] = static_cast<unsigned char>(size & 0xff);
        }
        std::memset(frame + header - 4, 0, 4); // a zero masking key
        out_end_ += header + size;
        started_ = true;
    }

    // A block with BFINAL ended the DEFLATE stream. The rest of this message
    // is ignored; the next one starts a new stream that may still refer to
    // this one's data (RFC 7692 section 7.2.3.4), so the window is kept.
    void keep_window_after_end()
    {
        ended_ = true;
        if (!window_)
            window_.reset(new unsigned char[32768]);
        uInt size = 0;
        if (inflateGetDictionary(&z_, window_.get(), &size) != Z_OK || inflateReset(&z_) != Z_OK ||
            inflateSetDictionary(&z_, window_.get(), size) != Z_OK)
            fail();
    }

    void fail()
    {
        error_ = inflate_error::bad_data;
        step_ = step::stopped;
    }

    // Raw input in_[in_begin_, in_end_); frames for Beast out_[out_begin_, out_end_).
    std::unique_ptr<unsigned char[]> in_;
    std::size_t in_begin_ = 0;
    std::size_t in_end_ = 0;
    std::unique_ptr<unsigned char[]> out_;
    std::size_t out_begin_ = 0;
    std::size_t out_end_ = 0;

    z_stream z_{};
    std::unique_ptr<unsigned char[]> window_; // made at the first BFINAL

    step step_ = step::header;
    message message_ = message::none;
    std::uint64_t remaining_ = 0;         // bytes left of the frame being copied or inflated
    std::array<unsigned char, 4> key_{};  // the frame's masking key
    std::size_t key_at_ = 0;              // payload bytes unmasked so far
    std::size_t unmasked_ = 0;            // input bytes at in_begin_ already unmasked
    unsigned char opcode_ = 0;            // text or binary: the compressed message's
    bool final_ = false;                  // the frame being inflated has FIN
    bool started_ = false;                // a frame of the message went out already
    bool ended_ = false;                  // its DEFLATE stream ended (BFINAL)
    std::size_t trailer_at_ = 0;          // bytes of 00 00 ff ff inflated
    error_code error_;
};

} // namespace mallard::detail

#endif
