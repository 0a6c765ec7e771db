// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_SERVER_PHASE_HPP
#define MALLARD_DETAIL_SERVER_PHASE_HPP

namespace mallard::detail {

/// Where a server is in its life, as a request sees it.
enum class server_phase {
    serving,  ///< upgrades are accepted, readiness_path says 200
    draining, ///< closing its connections over the drain window: upgrades and readiness get 503
    stopping, ///< the window is over: the listener is closed, the rest are being closed
};

/// Which listener a request came in on.
enum class listener_kind {
    public_port, ///< port (or plain_port): WebSockets, files, everything
    admin_port,  ///< admin_port: the operators' paths only
};

} // namespace mallard::detail

#endif
