// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_UTF8_HPP
#define MALLARD_DETAIL_UTF8_HPP

#include <string_view>

namespace mallard::detail {

/** Whether `text` does not end in the middle of a UTF-8 sequence.

    Beast validates every byte of a text message as it arrives, but when the
    final fragment is empty it never checks that the last code point was
    complete (Boost 1.81, websocket/impl/read.hpp). Everything before the tail
    is already known valid, so the tail is all that is left to check.
*/
constexpr bool utf8_tail_complete(std::string_view text) noexcept
{
    std::size_t end = text.size();
    int continuation = 0;
    while (end > 0 && continuation < 4 && (static_cast<unsigned char>(text[end - 1]) & 0xC0) == 0x80) {
        --end;
        ++continuation;
    }
    if (end == 0)
        return continuation == 0;
    auto const lead = static_cast<unsigned char>(text[end - 1]);
    int const needed = lead < 0x80             ? 0
                       : (lead & 0xE0) == 0xC0 ? 1
                       : (lead & 0xF0) == 0xE0 ? 2
                       : (lead & 0xF8) == 0xF0 ? 3
                                               : -1;
    return needed == continuation;
}

} // namespace mallard::detail

#endif
