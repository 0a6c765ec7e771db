// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_SERVER_STATE_HPP
#define MALLARD_DETAIL_SERVER_STATE_HPP

#include <mallard/detail/admission.hpp>
#include <mallard/detail/group_hub.hpp>
#include <mallard/detail/http/client_address.hpp>
#include <mallard/detail/server_phase.hpp>
#include <mallard/options.hpp>
#include <mallard/server_metrics.hpp>
#include <mallard/router.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
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
    /// Reads the server's metrics (for metrics_path); any thread.
    std::function<server_metrics()> read_metrics;
    /// The proxies whose forwarding headers are believed.
    trusted_networks trusted_proxies;
    /// The connection limits; set by the server.
    detail::admission* admission = nullptr;
};

} // namespace mallard::detail

#endif
