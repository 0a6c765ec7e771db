// SPDX-License-Identifier: BSL-1.0
// The view behind `mallard_echo --exact`, the testee of the conformance suite
// and the benchmarks; the session fuzzer serves it too, so that its seed
// corpus (recorded from the conformance cases) meets the same server.

#ifndef MALLARD_EXAMPLES_ECHO_EXACT_ECHO_VIEW_HPP
#define MALLARD_EXAMPLES_ECHO_EXACT_ECHO_VIEW_HPP

#include <mallard/websocket_view.hpp>

#include <cstddef>
#include <string_view>

namespace examples {

/// Echoes every message unchanged, text as text and binary as binary, with
/// 16 MiB limits and permessage-deflate when the client offers it.
class exact_echo_view : public mallard::websocket_view {
public:
    static constexpr std::size_t max_frame_size = 16 * 1024 * 1024;
    static constexpr std::size_t max_send_queue_bytes = 64 * 1024 * 1024;
    static constexpr std::size_t send_queue_high_water = 32 * 1024 * 1024;
    static constexpr bool permessage_deflate = true;

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        if (op == mallard::opcode::text)
            co_await send_text(data);
        else
            co_await send_binary(data);
    }
};

} // namespace examples

#endif
