// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_SERVER_STATE_HPP
#define MALLARD_DETAIL_SERVER_STATE_HPP

#include <mallard/detail/group_hub.hpp>
#include <mallard/options.hpp>
#include <mallard/router.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>

namespace mallard::detail {

/// What every connection reads from its server; fixed once `run()` starts.
struct server_state {
    server_options options;
    mallard::router routes;
    std::atomic<std::uint64_t> next_id{1};
    group_hub* groups = nullptr;
    /// The canonical static folder, when there is one.
    std::optional<std::filesystem::path> static_root;
};

} // namespace mallard::detail

#endif
