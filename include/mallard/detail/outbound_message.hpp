// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_OUTBOUND_MESSAGE_HPP
#define MALLARD_DETAIL_OUTBOUND_MESSAGE_HPP

// What views and connection handles hand to a connection's send queue.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace mallard::detail {

/// One message waiting to be written. A broadcast shares one immutable
/// payload among all recipients; a message to one client owns its bytes.
struct outbound_message {
    enum class kind : std::uint8_t { text, binary, ping };

    kind type = kind::text;
    std::string owned;
    std::shared_ptr<std::string const> shared;

    std::string_view bytes() const noexcept
    {
        return shared ? std::string_view(*shared) : std::string_view(owned);
    }
};

} // namespace mallard::detail

#endif
